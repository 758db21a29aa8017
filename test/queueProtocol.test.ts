// What crosses the queue, without a Redis: the --queue URL, the bit-exact wire codec, and the
// checks a worker makes on every job before it runs anything.
import { describe, expect, it } from 'vitest';
import { parseQueueUrl } from '../src/distributed/queueUrl.js';
import { decodeWire, encodeWire } from '../src/distributed/wireCodec.js';
import { buildMismatch, readUnitJob, readUnitResult, unitJobData, unitJobId, type Build } from '../src/distributed/unitJob.js';
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

describe('wire codec', () => {
  it('round-trips float arrays bit for bit (NaN payloads, −0, subnormals) and numbers JSON cannot hold', () => {
    const f = new Float32Array(6);
    const bits = new Uint32Array(f.buffer);
    bits.set([0x7fc00001, 0x80000000, 0x00000001, 0x7f800000, 0x3f800000, 0xff7fffff]);
    const value = { a: f, b: [1, -0, NaN, Infinity, -Infinity], c: new Int32Array([-1, 2]), d: { e: 'x', f: null, g: true }, h: new Float64Array([Math.PI]) };
    const back = decodeWire(JSON.parse(JSON.stringify(encodeWire(value)))) as typeof value;
    expect(new Uint32Array(back.a.buffer)).toEqual(bits);
    expect(Object.is(back.b[1], -0)).toBe(true);
    expect(back.b.slice(2)).toEqual([NaN, Infinity, -Infinity]);
    expect(back.c).toEqual(new Int32Array([-1, 2]));
    expect(back.d).toEqual({ e: 'x', f: null, g: true });
    expect(back.h[0]).toBe(Math.PI);
  });

  it('refuses what it would not have written', () => {
    expect(() => decodeWire({ $f32: 'AAA=' })).toThrow(/not a whole number of elements/);
    expect(() => decodeWire({ $f32: 'AAA' })).toThrow(/not base64/);
    expect(() => decodeWire({ $f32: 'A A' })).toThrow(/not base64/);
    expect(() => decodeWire({ $f32: 'AAAAAA==', x: 1 })).toThrow(/mixes the tag/);
    expect(() => decodeWire({ $code: 'process.exit()' })).toThrow(/unknown tag/);
    expect(() => decodeWire({ $num: 'e' })).toThrow(/unknown number/);
    expect(() => decodeWire(JSON.parse('{"__proto__": {"polluted": 1}}'))).toThrow(/__proto__/);
    expect(() => encodeWire({ f: () => 1 })).toThrow(/\$\.f is a function/);
    expect(() => encodeWire({ $x: 1 })).toThrow(/starts with '\$'/);
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

  it('a job reads back as the same unit input, through JSON', () => {
    const data = JSON.parse(JSON.stringify(unitJobData(tag, build, 'f'.repeat(16), input)));
    const { job, input: back } = readUnitJob(data);
    expect(job).toMatchObject({ ...tag, build, recipeHash: 'f'.repeat(16) });
    expect(back).toEqual(input);
  });

  it('refuses malformed jobs, naming the field', () => {
    const data = JSON.parse(JSON.stringify(unitJobData(tag, build, 'f'.repeat(16), input))) as Record<string, unknown>;
    expect(() => readUnitJob({ ...data, extra: 1 })).toThrow(/not a lopt unit job/);
    expect(() => readUnitJob({ ...data, runId: 'ABC; rm -rf /' })).toThrow(/runId/);
    const bad = (change: Record<string, unknown>) => ({ ...data, input: { ...(data['input'] as object), ...change } });
    expect(() => readUnitJob(bad({ steps: -1 }))).toThrow(/input is malformed: steps/);
    expect(() => readUnitJob(bad({ thetas: [1, 2, 3] }))).toThrow(/thetas: must be a float32 array/);
    expect(() => readUnitJob(bad({ start: 'eval' }))).toThrow(/start/);
    expect(() => readUnitJob(bad({ particles: [0, 1] }))).toThrow(/particles and particleStates differ/);
    expect(() => readUnitJob(bad({ module: '/tmp/evil.js' }))).toThrow(/input is malformed/);
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

  it('results are checked before the estimator sees them', () => {
    expect(() => readUnitResult({ worker: { id: 'w', host: 'h' }, seconds: 1, output: { losses: [] } })).toThrow(/malformed result/);
  });
});
