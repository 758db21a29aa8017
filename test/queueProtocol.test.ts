// What crosses the queue, without a Redis: the --queue URL, the bit-exact blob codec, and the
// checks a worker makes on every job before it runs anything.
import { describe, expect, it } from 'vitest';
import { parseQueueUrl } from '../src/distributed/queueUrl.js';
import { decodeBlob, encodeBlob } from '../src/distributed/blobCodec.js';
import {
  buildMismatch,
  encodeUnitInput,
  readUnitInput,
  readUnitJob,
  readUnitOutput,
  readUnitReceipt,
  unitBlobKey,
  unitJobData,
  unitJobId,
  type Build,
} from '../src/distributed/unitJob.js';
import type { TruncationUnitInput } from '../src/meta/truncationUnit.js';

describe('--queue URL', () => {
  it('reads host, port, database and credentials; shows none of the credentials', () => {
    const e = parseQueueUrl('redis://alice:s3cr%40t@10.0.0.5:6380/2', {});
    expect(e.connection).toMatchObject({ host: '10.0.0.5', port: 6380, db: 2, username: 'alice', password: 's3cr@t', maxRetriesPerRequest: null });
    expect(e.display).toBe('redis://10.0.0.5:6380/2');
    expect(e.tls).toBe(false);
    expect(e.connection.tls).toBeUndefined();
  });

  it('takes the password from LOPT_REDIS_PASSWORD when the URL has none, and TLS from rediss://', () => {
    const e = parseQueueUrl('rediss://cache.internal:6379', { LOPT_REDIS_PASSWORD: 'pw', LOPT_REDIS_USERNAME: 'bob' });
    expect(e.connection).toMatchObject({ host: 'cache.internal', port: 6379, db: 0, username: 'bob', password: 'pw', tls: {} });
    expect(e.display).toBe('rediss://cache.internal:6379/0');
    // The URL's own password wins over the environment's.
    expect(parseQueueUrl('redis://:mine@h:1', { LOPT_REDIS_PASSWORD: 'env' }).connection.password).toBe('mine');
  });

  it.each([
    ['http://h:6379', /scheme is 'http'/],
    ['redis://h', /no port/],
    ['redis://h:70000', /not a URL|not in 1…65535/],
    ['redis://h:6379/x', /database 'x' is not a number/],
    ['redis://h:6379/0?tls=1', /query strings/],
    ['not a url', /is not a URL/],
  ])('refuses %s naming what is wrong and the accepted form', (url, why) => {
    expect(() => parseQueueUrl(url, {})).toThrow(why);
    expect(() => parseQueueUrl(url, {})).toThrow(/redis:\/\/\[user:password@\]host:port\[\/db\]/);
  });

  it('never puts a password in its error messages', () => {
    for (const url of ['redis://u:hunter2@h', 'ftp://u:hunter2@h:1', 'redis://u:hunter2@h:1/zz', 'redis//u:hunter2@']) {
      let message = '';
      try {
        parseQueueUrl(url, {});
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('hunter2');
    }
  });
});

describe('blob codec', () => {
  it('round-trips float arrays bit for bit (NaN payloads, −0, subnormals) and numbers JSON cannot hold', () => {
    const f = new Float32Array(6);
    const bits = new Uint32Array(f.buffer);
    bits.set([0x7fc00001, 0x80000000, 0x00000001, 0x7f800000, 0x3f800000, 0xff7fffff]);
    const view = new Float32Array(new Float32Array([9, 1, 2, 9]).buffer, 4, 2); // a view into a larger buffer
    const value = {
      a: f,
      b: [1, -0, NaN, Infinity, -Infinity],
      c: new Int32Array([-1, 2]),
      d: { e: 'x', f: null, g: true },
      h: new Float64Array([Math.PI]),
      v: view,
      z: new Float32Array(0),
    };
    const back = decodeBlob(encodeBlob(value)) as typeof value;
    expect(new Uint32Array(back.a.buffer)).toEqual(bits);
    expect(Object.is(back.b[1], -0)).toBe(true);
    expect(back.b.slice(2)).toEqual([NaN, Infinity, -Infinity]);
    expect(back.c).toEqual(new Int32Array([-1, 2]));
    expect(back.d).toEqual({ e: 'x', f: null, g: true });
    expect(back.h[0]).toBe(Math.PI);
    expect(back.v).toEqual(new Float32Array([1, 2]));
    expect(back.v.buffer.byteLength).toBe(8); // its own buffer: movable to a worker thread
    expect(back.z).toEqual(new Float32Array(0));
  });

  it('refuses what it would not have written', () => {
    const good = encodeBlob({ a: new Float32Array([1, 2]), b: new Float32Array([3]) });
    expect(() => decodeBlob(Buffer.from('not a blob at all'))).toThrow(/not a lopt blob/);
    expect(() => decodeBlob(good.subarray(0, good.length - 8))).toThrow(/runs past the end/);
    const header = (h: unknown) => {
      const text = Buffer.from(JSON.stringify(h));
      const out = Buffer.alloc(8 + text.length + 64);
      out.writeUInt32LE(0x4c4f5042, 0);
      out.writeUInt32LE(text.length, 4);
      text.copy(out, 8);
      return out;
    };
    expect(() => decodeBlob(header({ a: { $a: 'f32', at: 8, n: 1 } }))).toThrow(/not where the next array must be/);
    expect(() => decodeBlob(header({ a: { $a: 'f32', at: 0, n: 1 }, b: { $a: 'f32', at: 0, n: 1 } }))).toThrow(/not where the next array must be/);
    expect(() => decodeBlob(header({ a: { $a: 'f32', at: 0, n: 1e9 } }))).toThrow(/runs past the end/);
    expect(() => decodeBlob(header({ a: { $a: 'code', at: 0, n: 1 } }))).toThrow(/unknown array kind/);
    expect(() => decodeBlob(header({ a: { $a: 'f32', at: 0, n: 1, x: 1 } }))).toThrow(/malformed array entry/);
    expect(() => decodeBlob(header({ a: { $n: 'e' } }))).toThrow(/unknown number/);
    expect(() => decodeBlob(header(JSON.parse('{"__proto__": {"polluted": 1}}')))).toThrow(/__proto__/);
    const long = Buffer.alloc(16);
    long.writeUInt32LE(0x4c4f5042, 0);
    long.writeUInt32LE(1000, 4);
    expect(() => decodeBlob(long)).toThrow(/header runs past its end/);
    expect(() => encodeBlob({ f: () => 1 })).toThrow(/\$\.f is not plain data/);
    expect(() => encodeBlob({ $x: 1 })).toThrow(/starts with '\$'/);
  });
});

describe('unit jobs', () => {
  const build: Build = { version: '0.1.0', commit: 'a'.repeat(40), backend: 'wasm', kernels: 'native' };
  const input: TruncationUnitInput = {
    task: 'mlp-mnist8-w16-d1-relu-b32-mup',
    lopt: { arch: 'small_fc_lopt', config: {} },
    root: 'lopt/meta-train/5/estimator-0',
    particles: [0],
    particleStates: [{ episode: 0, step: 0, length: 8 }],
    lengths: { kind: 'log-uniform', min: 6, max: 12 },
    thetas: new Float32Array([1, 2, 3]),
    steps: 4,
    start: 'persistent',
    state: null,
  };
  const tag = { runId: 'abc123', session: 'xyz', outerStep: 3, estimator: 1, unit: 2 };

  it('ids carry the run, the session, the outer step, the estimator and the unit', () => {
    expect(unitJobId(tag)).toBe('abc123.xyz.s3.e1.u2');
  });

  it('a job reads back through JSON, and its input through its stored bytes', () => {
    const data = JSON.parse(JSON.stringify(unitJobData(tag, build, 'f'.repeat(16))));
    expect(readUnitJob('abc123.xyz.s3.e1.u2', data)).toEqual({ ...tag, build, recipeHash: 'f'.repeat(16) });
    expect(readUnitInput(encodeUnitInput(input))).toEqual(input);
    expect(unitBlobKey('abc123.xyz.s3.e1.u2', 'input')).toBe('lopt:units:blob:abc123.xyz.s3.e1.u2:input');
  });

  it('refuses malformed jobs and inputs, naming the field', () => {
    const data = JSON.parse(JSON.stringify(unitJobData(tag, build, 'f'.repeat(16)))) as Record<string, unknown>;
    const id = 'abc123.xyz.s3.e1.u2';
    expect(() => readUnitJob(id, { ...data, extra: 1 })).toThrow(/not a lopt unit job/);
    expect(() => readUnitJob(id, { ...data, input: '/tmp/evil.js' })).toThrow(/not a lopt unit job/);
    expect(() => readUnitJob(id, { ...data, runId: 'ABC; rm -rf /' })).toThrow(/runId/);
    // A job may not name another job's stored input: its id must be the one its fields give.
    expect(() => readUnitJob('abc123.xyz.s3.e1.u9', data)).toThrow(/its id is not the one its fields name/);
    const bad = (change: Record<string, unknown>) => readUnitInput(encodeBlob({ ...input, ...change }));
    expect(() => bad({ steps: -1 })).toThrow(/input is malformed: steps/);
    expect(() => bad({ thetas: [1, 2, 3] })).toThrow(/thetas: must be a float32 array/);
    expect(() => bad({ start: 'eval' })).toThrow(/start/);
    expect(() => bad({ particles: [0, 1] })).toThrow(/particles and particleStates differ/);
    expect(() => bad({ module: '/tmp/evil.js' })).toThrow(/input is malformed/);
  });

  it('a worker refuses jobs of another version, commit, backend or kernel path', () => {
    expect(buildMismatch(build, build)).toBeNull();
    expect(buildMismatch(build, { ...build, version: '0.2.0' })).toMatch(/made by lopt 0\.2\.0, this worker runs lopt 0\.1\.0/);
    expect(buildMismatch(build, { ...build, commit: 'b'.repeat(40) })).toMatch(/commit bbbbbbbbbbbb, this worker runs commit aaaaaaaaaaaa/);
    // A commit unknown on one side (an installed package) does not block.
    expect(buildMismatch(build, { ...build, commit: null })).toBeNull();
    expect(buildMismatch(build, { ...build, backend: 'cpu' })).toMatch(/cpu backend/);
    expect(buildMismatch(build, { ...build, kernels: 'ops' })).toMatch(/ops kernels/);
  });

  it('receipts and outputs are checked before the estimator sees them', () => {
    expect(() => readUnitReceipt({ worker: { id: 'w', host: 'h' }, seconds: -1 })).toThrow(/malformed receipt/);
    expect(() => readUnitOutput(encodeBlob({ losses: [] }))).toThrow(/malformed output/);
  });
});
