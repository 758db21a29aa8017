import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMsgpackBounds, CHECKPOINT_BOUNDS, MsgpackBoundsError } from '../src/checkpoint/msgpackBounds.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const packr = new Packr({ moreTypes: true, useRecords: false });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lopt-bounds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Values in decoded data, counted the way the walk counts tokens: a typed array is one value. */
function countValues(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce((sum: number, v) => sum + countValues(v), 0);
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    return 1 + Object.entries(value).reduce((sum, [, v]) => sum + 1 + countValues(v), 0); // key + value
  }
  return 1;
}

function refusal(bytes: Uint8Array, bounds = CHECKPOINT_BOUNDS): MsgpackBoundsError {
  try {
    checkMsgpackBounds(bytes, bounds);
  } catch (error) {
    expect(error).toBeInstanceOf(MsgpackBoundsError);
    return error as MsgpackBoundsError;
  }
  throw new Error('expected the walk to refuse the bytes');
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}

describe('checkMsgpackBounds', () => {
  it('walks what the checkpoint writer produces, counting every value', () => {
    const data = {
      format: 'lopt',
      ints: [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32, -1, -32, -33, -129, -32769, -(2 ** 31) - 1],
      floats: [0.5, 1e300, -1e-300, NaN],
      strings: ['', 'a'.repeat(31), 'b'.repeat(32), 'c'.repeat(256), 'd'.repeat(70_000)],
      nested: { a: { b: { c: [[[]], {}] } }, flags: [true, false, null] },
      arrays: [new Float32Array([1, 2, 3]), new Float64Array(2), new Int32Array(0), new Uint8Array(300)],
      big: Array.from({ length: 70_000 }, (_, i) => i % 3),
      wideMap: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i])),
    };
    const bytes = packr.pack(data);
    expect(checkMsgpackBounds(bytes)).toBe(countValues(packr.unpack(bytes)));
  });

  it('refuses a declared length longer than the bytes that remain, as incomplete', () => {
    const array32 = refusal(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x90]));
    expect(array32.message).toBe('byte 0: an array of 4294967295 declares more values than the 1 bytes left can hold');
    expect(array32.incomplete).toBe(true);
    const map16 = refusal(Uint8Array.from([0xde, 0x00, 0x02, 0xc0, 0xc0, 0xc0]));
    expect(map16.message).toBe('byte 0: a map of 2 declares more values than the 3 bytes left can hold');
    const str32 = refusal(Uint8Array.from([0x91, 0xdb, 0x00, 0x01, 0x00, 0x00, 0x61]));
    expect(str32.message).toBe('byte 1: a string declares 65536 bytes, but only 1 remain');
    const bin = refusal(Uint8Array.from([0xc6, 0x7f, 0xff, 0xff]));
    expect(bin.message).toBe('byte 0: a length declares 4 bytes, but only 3 remain');
    // Each container fits the bytes left, but together they need one more.
    expect(refusal(Uint8Array.from([0x92, 0x91, 0xc0])).message).toBe('byte 3: the data ends early');
  });

  it('refuses too many values and too deep nesting, whatever the file size', () => {
    const many = refusal(packr.pack(Array.from({ length: 100 }, () => [])), { maxValues: 50, maxDepth: 64 });
    expect(many.message).toMatch(/^byte \d+: more than 50 values$/);
    expect(many.incomplete).toBe(false);
    const deep = concat(new Array(65).fill(0x91), [0xc0]);
    expect(refusal(deep).message).toBe('byte 64: nested deeper than 64 levels');
    expect(checkMsgpackBounds(deep.subarray(1))).toBe(65);
  });

  it('refuses extensions a checkpoint never holds, and bytes msgpack never uses', () => {
    expect(refusal(Uint8Array.from([0xd4, 0x72, 0x00, 0x90])).message).toBe(
      'byte 0: msgpack extension type 0x72 (msgpackr record definition); a checkpoint holds only typed arrays (0x74)',
    );
    expect(refusal(new Packr({ moreTypes: true }).pack(new Set([1]))).message).toMatch(/extension type 0x73 \(msgpackr Set\)/);
    expect(refusal(packr.pack(/x+/)).message).toMatch(/extension type 0x78 \(msgpackr RegExp\)/);
    expect(refusal(packr.pack(new Date(0))).message).toMatch(/extension type 0xff \(msgpackr Date\)/);
    expect(refusal(Uint8Array.from([0xd4, 0x10, 0x00])).message).toBe('byte 0: msgpack extension type 0x10; a checkpoint holds only typed arrays (0x74)');
    expect(refusal(Uint8Array.from([0x92, 0xc0, 0xc1])).message).toBe('byte 2: 0xc1 is not a msgpack type');
  });

  it('a hostile 30 MB file is refused by loadCheckpoint with little memory, also under a 512 MB heap', async () => {
    // A map (so it passes the first-byte check) holding an array32 of 30 million empty arrays:
    // decoded, each 1-byte array becomes a JS array of ~40 bytes (1.5 GB before the walk existed).
    const count = 30_000_000;
    const head = packr.pack({ format: 'lopt', junk: [] });
    const bytes = new Uint8Array(head.length - 1 + 5 + count).fill(0x90);
    bytes.set(head.subarray(0, head.length - 1));
    bytes.set([0xdd, (count >>> 24) & 0xff, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff], head.length - 1);
    const path = join(dir, 'hostile.lopt');
    await writeFile(path, bytes);

    const script = `
      const { loadCheckpoint } = await import(${JSON.stringify(join(root, 'dist/src/checkpoint/index.js'))});
      const before = process.memoryUsage().rss;
      const start = performance.now();
      let message = 'loaded';
      try { await loadCheckpoint(${JSON.stringify(path)}); } catch (e) { message = e.message; }
      const seconds = (performance.now() - start) / 1000;
      const grewMb = (process.resourceUsage().maxRSS * 1024 - before) / 2 ** 20;
      console.log(JSON.stringify({ message, seconds, grewMb }));`;
    const child = spawnSync(process.execPath, ['--max-old-space-size=512', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const result = JSON.parse(child.stdout) as { message: string; seconds: number; grewMb: number };
    expect(result.message).toBe(`${path}: not a valid checkpoint: byte ${head.length - 1 + 5 + 1_000_000 - 5}: more than 1000000 values`);
    // The file itself (30 MB) is read whole; decoding it would have taken 1.5 GB.
    expect(result.grewMb).toBeLessThan(100);
    console.log(`hostile 30 MB checkpoint refused in ${result.seconds.toFixed(3)} s, RSS grew ${result.grewMb.toFixed(0)} MB`);
  }, 60_000);
});
