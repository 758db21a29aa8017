import { mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CheckpointError,
  gitCommit,
  loadCheckpoint,
  saveCheckpoint,
  thetaFromCheckpoint,
  thetaToCheckpoint,
  type Checkpoint,
} from '../src/checkpoint/index.js';

// fs/promises with switchable faults, to check what a failed write leaves behind and that an
// oversized file is refused before it is opened.
const faults = vi.hoisted(() => ({
  failRename: false,
  failWriteHalfway: false,
  opened: [] as string[],
}));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const open = async (...args: Parameters<typeof actual.open>) => {
    faults.opened.push(String(args[0]));
    const handle = await actual.open(...args);
    if (faults.failWriteHalfway) {
      // Writes half of the bytes, then fails: a disk filling up or a crash mid-write.
      const writeFile = handle.writeFile.bind(handle);
      handle.writeFile = (async (data: Uint8Array) => {
        await writeFile(data.subarray(0, data.length >> 1));
        throw Object.assign(new Error('EIO: simulated failure mid-write'), { code: 'EIO' });
      }) as typeof handle.writeFile;
    }
    return handle;
  };
  const rename = async (...args: Parameters<typeof actual.rename>) => {
    if (faults.failRename) throw Object.assign(new Error('EXDEV: simulated rename failure'), { code: 'EXDEV' });
    return actual.rename(...args);
  };
  return { ...actual, default: { ...actual, open, rename }, open, rename };
});

/** Writes what the checkpoint writer would, minus validation: for crafting bad files. */
const rawPackr = new Packr({ moreTypes: true, useRecords: false });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lopt-checkpoint-'));
  await tf.setBackend('cpu');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  faults.failRename = false;
  faults.failWriteHalfway = false;
  faults.opened.length = 0;
});

let fileCounter = 0;
function freshPath(stem = 'ckpt'): string {
  return join(dir, `${stem}-${fileCounter++}.lopt`);
}

/** Float32 values from bit patterns: the edge cases plus pseudo-random finite floats. */
function edgeFloats(): Float32Array {
  const specials = new Float32Array([
    0,
    -0,
    1,
    -1,
    1.401298464324817e-45, // smallest denormal
    -1.401298464324817e-45,
    1.1754942106924411e-38, // largest denormal
    1.1754943508222875e-38, // smallest normal
    3.4028234663852886e38, // largest float32
    -3.4028234663852886e38,
    0.1,
    Math.PI,
  ]);
  const out = new Float32Array(64);
  out.set(specials);
  const bits = new Uint32Array(out.buffer);
  let s = 12345;
  for (let i = specials.length; i < out.length; i++) {
    do {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bits[i] = s;
    } while (!Number.isFinite(out[i])); // exponent all ones is NaN/Inf, which the format refuses
  }
  return out;
}

function sample(): Checkpoint {
  const w0 = new Float32Array(39 * 32).map((_, i) => Math.sin(i) * 1e-3);
  return {
    format: 'lopt',
    version: 1,
    arch: 'mlp_lopt',
    config: { hiddenSize: 32, stepMultiplier: 0.001, magnitudeMultiplier: 1e-3, activation: 'relu', useMomentum: true },
    // Integer-like names ('10', '2') would jump to the front of a JS object; the table keeps order.
    theta: {
      names: ['mlp/w0', 'edge', '10', '2', 'scalar', 'empty'],
      shapes: [[39, 32], [8, 8], [1], [2], [], [0, 3]],
      data: [w0, edgeFloats(), new Float32Array([7]), new Float32Array([-0, 5e-42]), new Float32Array([0.5]), new Float32Array(0)],
    },
    provenance: {
      recipe: 'meta-train/small.json',
      outerStep: 1500,
      gitCommit: '0123456789abcdef0123456789abcdef01234567',
      createdAt: '2025-01-31T12:34:56.789Z',
      backend: 'wasm',
    },
    eval: { mnist_mlp: { finalLoss: 0.231, curve: [2.3, 1.1, 0.5], diverged: false, note: null } },
    training: {
      arrays: {
        names: ['adam/m/mlp/w0', 'adam/v/mlp/w0'],
        shapes: [
          [39, 32],
          [39, 32],
        ],
        data: [w0.map((x) => x * 0.1), w0.map((x) => x * x)],
      },
      state: { rng: { workers: ['s0:1f2e', 's1:9a8b'] }, innerStep: [10, 20], outerStep: 1500, estimator: { kind: 'pes', accumulated: [0.5, -0.25] } },
    },
  };
}

function bitsOf(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function expectTablesBitEqual(actual: Checkpoint['theta'], expected: Checkpoint['theta']): void {
  expect(actual.names).toEqual(expected.names);
  expect(actual.shapes).toEqual(expected.shapes);
  expect(actual.data.length).toBe(expected.data.length);
  actual.data.forEach((d, i) => {
    expect(d).toBeInstanceOf(Float32Array);
    expect(bitsOf(d)).toEqual(bitsOf(expected.data[i] as Float32Array));
  });
}

async function writeRaw(value: unknown, stem = 'raw'): Promise<string> {
  const path = freshPath(stem);
  await writeFile(path, rawPackr.pack(value));
  return path;
}

/** Loading `path` fails with a CheckpointError whose message names the file and matches `problem`. */
async function expectRefused(path: string, problem: RegExp | string, options?: Parameters<typeof loadCheckpoint>[1]) {
  const error = await loadCheckpoint(path, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CheckpointError);
  const message = (error as Error).message;
  expect(message.startsWith(`${path}: `)).toBe(true);
  if (typeof problem === 'string') expect(message).toBe(problem);
  else expect(message).toMatch(problem);
  return error as CheckpointError;
}

describe('round trip', () => {
  it('keeps every section, bit for bit', async () => {
    const path = freshPath();
    const ckpt = sample();
    await saveCheckpoint(path, ckpt);
    const loaded = await loadCheckpoint(path, { arch: 'mlp_lopt' });

    expect(loaded.format).toBe('lopt');
    expect(loaded.version).toBe(2);
    expect(loaded.arch).toBe('mlp_lopt');
    expect(loaded.config).toEqual(ckpt.config);
    expect(Object.keys(loaded.config)).toEqual(Object.keys(ckpt.config));
    expectTablesBitEqual(loaded.theta, ckpt.theta);
    expect(Object.is(loaded.theta.data[1]?.[1], -0)).toBe(true);
    expect(loaded.theta.data[1]?.[4]).toBe(1.401298464324817e-45);
    expect(loaded.theta.data[1]?.[8]).toBe(3.4028234663852886e38);
    expect(loaded.provenance).toEqual(ckpt.provenance);
    expect(loaded.eval).toEqual(ckpt.eval);
    expectTablesBitEqual(loaded.training!.arrays, ckpt.training!.arrays);
    expect(loaded.training!.state).toEqual(ckpt.training!.state);
  });

  it('leaves optional sections out when absent and overwrites an existing file', async () => {
    const path = freshPath();
    await saveCheckpoint(path, sample());
    const { eval: _e, training: _t, ...minimal } = sample();
    minimal.provenance = { createdAt: new Date().toISOString() };
    await saveCheckpoint(path, minimal);
    const loaded = await loadCheckpoint(path);
    expect(Object.keys(loaded).sort()).toEqual(['arch', 'config', 'format', 'provenance', 'theta', 'version']);
    expect(loaded.provenance).toEqual(minimal.provenance);
    expectTablesBitEqual(loaded.theta, minimal.theta);
  });

  it('converts tensors to and from the theta table', async () => {
    const theta = {
      'mlp/w0': tf.tensor2d([
        [1, -0],
        [3.4028234663852886e38, 1e-45],
      ]),
      'mlp/b0': tf.tensor1d([0.25, -0.5, 0.125]),
      scale: tf.scalar(2),
    };
    const table = thetaToCheckpoint(theta);
    expect(table.names).toEqual(['mlp/w0', 'mlp/b0', 'scale']);
    expect(table.shapes).toEqual([[2, 2], [3], []]);

    const path = freshPath();
    await saveCheckpoint(path, { ...sample(), theta: table });
    const back = thetaFromCheckpoint((await loadCheckpoint(path)).theta);
    expect(Object.keys(back)).toEqual(Object.keys(theta));
    for (const [name, t] of Object.entries(theta)) {
      const u = back[name]!;
      expect(u.shape).toEqual(t.shape);
      expect(u.dtype).toBe('float32');
      expect(bitsOf(u.dataSync() as Float32Array)).toEqual(bitsOf(t.dataSync() as Float32Array));
    }
    // The table is a copy: changing it does not change the tensor it came from.
    table.data[2]![0] = 99;
    expect(theta.scale.dataSync()[0]).toBe(2);

    const ints = { step: tf.tensor1d([1, 2], 'int32') };
    expect(() => thetaToCheckpoint(ints)).toThrow(/'step' has dtype int32; theta tensors must be float32/);
    tf.dispose([...Object.values(theta), ...Object.values(back), ...Object.values(ints)]);
  });

  it('reads the git commit from .git without running git', async () => {
    const head = (await readFile(join(process.cwd(), '.git', 'HEAD'), 'utf8').catch(() => undefined))?.trim();
    const commit = await gitCommit();
    if (head === undefined) expect(commit).toBeUndefined();
    else expect(commit).toMatch(/^[0-9a-f]{40}$/);
    expect(await gitCommit(dir)).toBeUndefined();
  });
});

describe('atomic write', () => {
  async function expectUnchanged(path: string, before: Uint8Array) {
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    // No temp file left behind.
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect((await loadCheckpoint(path)).provenance.outerStep).toBe(1500);
  }

  it('keeps the previous file when the rename fails', async () => {
    const path = freshPath();
    await saveCheckpoint(path, sample());
    const before = await readFile(path);
    faults.failRename = true;
    const next = { ...sample(), provenance: { ...sample().provenance, outerStep: 1600 } };
    await expect(saveCheckpoint(path, next)).rejects.toThrow(`${path}: could not write the checkpoint (EXDEV: simulated rename failure)`);
    await expectUnchanged(path, before);
  });

  it('keeps the previous file when writing fails halfway', async () => {
    const path = freshPath();
    await saveCheckpoint(path, sample());
    const before = await readFile(path);
    faults.failWriteHalfway = true;
    await expect(saveCheckpoint(path, sample())).rejects.toThrow(/could not write the checkpoint \(EIO: simulated failure mid-write\)/);
    faults.failWriteHalfway = false;
    await expectUnchanged(path, before);
  });

  it('validates before writing: an invalid checkpoint creates no file', async () => {
    const path = freshPath();
    const bad = sample();
    bad.theta.data[0]![3] = Number.NaN;
    await expect(saveCheckpoint(path, bad)).rejects.toThrow(`${path}: theta 'mlp/w0': value 3 of 1248 is NaN; values must be finite`);
    await expect(saveCheckpoint(path, [] as unknown as Checkpoint)).rejects.toThrow(
      `${path}: not a lopt checkpoint: expected a map at the top level, found an array of 0`,
    );
    expect(faults.opened).toEqual([]);
    await expect(readFile(path)).rejects.toThrow(/ENOENT/);
  });
});

describe('refusing bad input', () => {
  /** `sample()` as the writer would encode it, with `edit` applied first (bypassing validation). */
  function edited(edit: (c: Record<string, unknown> & Checkpoint) => void): Promise<string> {
    const c = sample() as Record<string, unknown> & Checkpoint;
    edit(c);
    return writeRaw(c);
  }

  it('a truncated file', async () => {
    const path = freshPath();
    await saveCheckpoint(path, sample());
    const bytes = await readFile(path);
    for (const cut of [1, 40, bytes.length >> 1, bytes.length - 1]) {
      const truncated = freshPath('truncated');
      await writeFile(truncated, bytes.subarray(0, cut));
      await expectRefused(truncated, new RegExp(`truncated or incomplete: the msgpack data ends early \\(${cut} bytes`));
    }
  });

  it('random bytes, JSON text, an empty file, a directory, a missing file', async () => {
    const noise = new Uint8Array(4096);
    let s = 99;
    for (let i = 0; i < noise.length; i++) noise[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
    noise[0] = 0x13; // not a map token
    const random = freshPath('random');
    await writeFile(random, noise);
    await expectRefused(random, /not a lopt checkpoint: a checkpoint is a msgpack map, but the file starts with byte 0x13$/);

    noise[0] = 0x85; // a fixmap: gets past the first-byte check into the decoder and validator
    const randomMap = freshPath('random');
    await writeFile(randomMap, noise);
    await expectRefused(randomMap, /not a valid msgpack file|truncated or incomplete|not a lopt checkpoint|format: expected 'lopt'/);

    const json = freshPath('json');
    await writeFile(json, JSON.stringify({ format: 'lopt', version: 1, arch: 'mlp_lopt', theta: {} }));
    await expectRefused(json, /starts with byte 0x7b \('\{'\): this looks like JSON text/);

    const empty = freshPath('empty');
    await writeFile(empty, '');
    await expectRefused(empty, `${empty}: the file is empty (0 bytes); not a lopt checkpoint`);

    const folder = freshPath('folder');
    await mkdir(folder);
    await expectRefused(folder, `${folder}: not a regular file`);

    await expectRefused(freshPath('missing'), /cannot read the checkpoint \(ENOENT/);
  });

  it('msgpack that is not a checkpoint', async () => {
    await expectRefused(
      await writeRaw([1, 2, 3]),
      /not a lopt checkpoint: a checkpoint is a msgpack map, but the file starts with byte 0x93 \(a msgpack array\)$/,
    );
    await expectRefused(await writeRaw({ hello: 'world' }), /format: expected 'lopt', found nothing; not a lopt checkpoint/);
    await expectRefused(await edited((c) => (c.format = 'safetensors' as 'lopt')), /format: expected 'lopt', found the string "safetensors"/);
  });

  it('an unsupported version, naming the supported ones', async () => {
    const path = await edited((c) => (c.version = 3 as 1));
    await expectRefused(path, `${path}: version: found 3; this lopt reads version 1, 2`);
    // Version 2 is the checksummed envelope: a bare checkpoint map claiming it is refused.
    const bare = await edited((c) => (c.version = 2));
    await expectRefused(bare, /a version 2 file holds exactly format, version, sha256, payload; found format, version, arch/);
  });

  it('another architecture than asked for', async () => {
    const path = await writeRaw(sample());
    await expectRefused(path, `${path}: arch: checkpoint is for 'mlp_lopt', expected 'small_fc_lopt'`, { arch: 'small_fc_lopt' });
    expect((await loadCheckpoint(path)).arch).toBe('mlp_lopt');
    await expectRefused(await edited((c) => (c.arch = 42 as unknown as string)), /arch: expected a non-empty string, found 42/);
  });

  it('data whose length does not match the shape', async () => {
    const path = await edited((c) => (c.theta.data[0] = new Float32Array(1000)));
    await expectRefused(path, `${path}: theta 'mlp/w0': shape [39,32] needs 1248 values, found 1000`);
  });

  it('NaN and ±Infinity', async () => {
    for (const [bad, shown] of [
      [Number.NaN, 'NaN'],
      [Infinity, 'Infinity'],
      [-Infinity, '-Infinity'],
    ] as const) {
      const path = await edited((c) => (c.theta.data[3]![1] = bad));
      await expectRefused(path, `${path}: theta '2': value 1 of 2 is ${shown}; values must be finite`);
    }
    // The trainer's arrays may hold NaN (a diverged inner run is state to resume exactly); theta may not.
    const inState = await edited((c) => (c.training!.arrays.data[1]![0] = Number.NaN));
    const loaded = await loadCheckpoint(inState);
    expect(Number.isNaN(loaded.training!.arrays.data[1]![0]!)).toBe(true);
    const inEval = await edited((c) => (c.eval = { loss: Number.NaN }));
    await expectRefused(inEval, /eval\.loss: expected a finite number, found NaN/);
  });

  it('duplicate, empty or missing names and mismatched lists', async () => {
    await expectRefused(await edited((c) => (c.theta.names[3] = 'edge')), /theta\.names\[3\]: duplicate name 'edge' \(also at \[1\]\); names must be unique/);
    await expectRefused(await edited((c) => (c.theta.names[0] = '')), /theta\.names\[0\]: expected a non-empty string, found the string ""/);
    await expectRefused(await edited((c) => c.theta.names.pop()), /theta: 5 names, 6 shapes and 6 data arrays; the three lists must have the same length/);
  });

  it('data that is not a Float32Array', async () => {
    await expectRefused(
      await edited((c) => (c.theta.data[3] = [1, 2] as unknown as Float32Array)),
      /theta '2': data must be a Float32Array, found an array of 2 \[1,2\]/,
    );
    await expectRefused(
      await edited((c) => (c.theta.data[3] = new Float64Array(2) as unknown as Float32Array)),
      /theta '2': data must be a Float32Array, found a Float64Array of 2/,
    );
  });

  it('bad shapes', async () => {
    await expectRefused(
      await edited((c) => (c.theta.shapes[3] = [-2])),
      /theta '2': shape must be an array of non-negative integers, found an array of 1 \[-2\]/,
    );
    await expectRefused(await edited((c) => (c.theta.shapes[3] = [1.5])), /theta '2': shape must be an array of non-negative integers/);
    await expectRefused(
      await edited((c) => (c.theta.shapes[3] = '2' as unknown as number[])),
      /theta '2': shape must be an array of non-negative integers, found the string "2"/,
    );
  });

  it('unknown keys, at the top level and in fixed sections', async () => {
    const path = await edited((c) => {
      c.extra = 1;
      c.also = 'x';
    });
    await expectRefused(path, `${path}: unknown top-level keys 'extra', 'also'; allowed: format, version, arch, config, theta, provenance, eval, training`);
    // Names from the file are escaped in messages, so a file cannot drive the terminal.
    await expectRefused(await edited((c) => (c['\u001b[31mred'] = 1)), /unknown top-level key '\\u001b\[31mred'; allowed/);
    await expectRefused(
      await edited((c) => ((c.provenance as unknown as Record<string, unknown>).author = 'me')),
      /provenance: unknown key 'author'; allowed: recipe, outerStep, gitCommit, createdAt, backend/,
    );
    await expectRefused(
      await edited((c) => ((c.theta as unknown as Record<string, unknown>).dtype = 'f32')),
      /theta: unknown key 'dtype'; allowed: names, shapes, data/,
    );
  });

  it('bad config, provenance, eval and training', async () => {
    await expectRefused(
      await edited((c) => ((c.config as Record<string, unknown>).layers = [32, 32])),
      /config\.layers: expected a number, string or boolean \(config is flat\), found an array of 2/,
    );
    await expectRefused(await edited((c) => (c.config.lr = Infinity)), /config\.lr: expected a finite number, found Infinity/);
    await expectRefused(
      await edited((c) => (c.provenance.createdAt = 'yesterday')),
      /provenance\.createdAt: expected an ISO 8601 date-time such as '2025-01-31T12:00:00\.000Z', found the string "yesterday"/,
    );
    await expectRefused(
      await edited((c) => delete (c.provenance as Partial<Checkpoint['provenance']>).createdAt),
      /provenance\.createdAt: expected an ISO 8601 date-time .*found nothing/,
    );
    await expectRefused(await edited((c) => (c.provenance.outerStep = -1)), /provenance\.outerStep: expected a non-negative integer, found -1/);
    // A RegExp never reaches the validator from a file: the bounds walk refuses msgpackr's extension.
    await expectRefused(
      await edited((c) => (c.eval = { re: /a+/ as unknown as string })),
      /not a valid checkpoint: byte \d+: msgpack extension type 0x78 \(msgpackr RegExp\)/,
    );
    await expectRefused(
      await edited((c) => (c.eval = { curve: new Float32Array(2) as unknown as number[] })),
      /eval\.curve: expected a JSON value .*found a Float32Array of 2/,
    );
    await expectRefused(await edited((c) => delete (c.training as Partial<NonNullable<Checkpoint['training']>>).state), /training: missing state/);
  });

  it('a "__proto__" key cannot reach Object.prototype', async () => {
    const path = await edited((c) => (c.eval = JSON.parse('{"__proto__": {"polluted": true}}') as Checkpoint['eval']));
    const loaded = await loadCheckpoint(path);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(loaded.eval)).toBe(Object.prototype);
  });

  it('record-encoded data is refused before decoding, and compiles no code', async () => {
    // msgpackr's main build compiles a reader (new Function) for a record seen a few times. lopt
    // never writes records, so the bounds walk refuses them before msgpackr (the no-eval build)
    // sees a byte.
    const recordPackr = new Packr({ moreTypes: true, useRecords: true });
    const rows = Array.from({ length: 20 }, (_, i) => ({ step: i, loss: 1 / (i + 1), 'odd key': 'x' }));
    const path = freshPath('records');
    await writeFile(path, recordPackr.pack({ ...sample(), eval: { rows } }));
    const RealFunction = globalThis.Function;
    let compiled = 0;
    globalThis.Function = new Proxy(RealFunction, {
      construct(target, args: unknown[]) {
        compiled++;
        return Reflect.construct(target, args) as object;
      },
    });
    try {
      await expectRefused(
        path,
        /not a valid checkpoint: byte \d+: msgpack extension type 0x72 \(msgpackr record definition\); a checkpoint holds only typed arrays \(0x74\)$/,
      );
    } finally {
      globalThis.Function = RealFunction;
    }
    expect(compiled).toBe(0);
  });

  it('a huge file, by size, before opening it', async () => {
    const path = freshPath('huge');
    await writeFile(path, '');
    await truncate(path, 2 * 1024 ** 3); // sparse: nothing is written
    faults.opened.length = 0;
    const start = performance.now();
    await expectRefused(
      path,
      `${path}: the file is 2147483648 bytes, over the 268435456-byte limit; refusing to read it (raise maxBytes if it is a trusted checkpoint)`,
    );
    expect(performance.now() - start).toBeLessThan(1000);
    expect(faults.opened).toEqual([]);
    await rm(path);

    const small = await writeRaw(sample());
    await expectRefused(small, /over the 100-byte limit/, { maxBytes: 100 });
  });
});

describe('checksum (version 2)', () => {
  it('every single-byte change in a saved file is refused, never loaded silently', async () => {
    const path = freshPath();
    await saveCheckpoint(path, sample());
    const bytes = await readFile(path);
    let s = 7;
    const flipped = freshPath('flipped');
    for (let trial = 0; trial < 100; trial++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const at = s % bytes.length;
      const copy = Uint8Array.from(bytes);
      copy[at] = copy[at]! ^ (1 + ((s >>> 8) % 255));
      await writeFile(flipped, copy);
      const error = await loadCheckpoint(flipped).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `byte ${at}`).toBeInstanceOf(CheckpointError);
    }
  });

  it('a payload edited without its digest is named a checksum mismatch', async () => {
    const path = freshPath();
    await saveCheckpoint(path, sample());
    const envelope = rawPackr.unpack(await readFile(path)) as { payload: Uint8Array };
    const inner = rawPackr.unpack(envelope.payload) as Checkpoint;
    inner.theta.data[0]![0] = 1;
    const edited = freshPath('edited');
    await writeFile(edited, rawPackr.pack({ ...envelope, payload: rawPackr.pack(inner) }));
    await expectRefused(edited, /sha256: checksum mismatch: the payload hashes to [0-9a-f]{16}…, the file records [0-9a-f]{16}…; the file is corrupt$/);
  });

  it('files written before (version 1, no checksum) still load', async () => {
    const path = await writeRaw(sample(), 'v1');
    const loaded = await loadCheckpoint(path);
    expect(loaded.version).toBe(1);
    expectTablesBitEqual(loaded.theta, sample().theta);
  });
});
