import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../src/checkpoint/error.js';
import {
  decodeFlaxMsgpack,
  flaxArrayLeaves,
  isFlaxArray,
  isFlaxMap,
  loadFlaxMsgpackFile,
  readParameterCheckpoint,
  type FlaxArray,
  type FlaxLimits,
  type FlaxMap,
  type FlaxTree,
} from '../src/checkpoint/flax/flaxMsgpack.js';
import { ginParam, readGinBindings } from '../src/checkpoint/flax/gin.js';
import { pythonWithMsgpack, runVeloWriter, VELO_FIXTURE_DIR, veloLeafSpecs, veloLeafValues } from './helpers/veloFixture.js';

const CHECKPOINT = join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4', 'params');
const CHECKPOINT_GIN = join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4', 'config.gin');
const TUPLE_LEGACY = join(VELO_FIXTURE_DIR, 'tuple_legacy_h8_k4_f4', 'params');
const CHUNKED = join(VELO_FIXTURE_DIR, 'chunked64_h8_k4_f4', 'params');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lopt-flax-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every leaf of `params` is the VeLO leaf of the formula, in file order, value for value. Returns the float count. */
function expectVeloParams(params: FlaxTree, H: number, K: number, F: number): number {
  const specs = veloLeafSpecs(H, K, F);
  const leaves = flaxArrayLeaves(params);
  expect(leaves.map((l) => l.path.join('/'))).toEqual(specs.map((s) => s.path.join('/')));
  let floats = 0;
  for (const [k, spec] of specs.entries()) {
    const { array } = leaves[k]!;
    expect(array.dtype, spec.path.join('/')).toBe('float32');
    expect(array.shape, spec.path.join('/')).toEqual(spec.shape);
    const want = veloLeafValues(k, spec);
    expect(array.data.length).toBe(want.length);
    let firstBad = -1;
    for (let i = 0; i < want.length && firstBad < 0; i++) if (!Object.is(array.data[i], want[i])) firstBad = i;
    expect(firstBad, `${spec.path.join('/')}[${firstBad}]: ${array.data[firstBad]} ≠ ${want[firstBad]}`).toBe(-1);
    floats += want.length;
  }
  return floats;
}

function expectSameArrays(a: FlaxTree, b: FlaxTree): void {
  const la = flaxArrayLeaves(a);
  const lb = flaxArrayLeaves(b);
  expect(la.map((l) => l.path.join('/'))).toEqual(lb.map((l) => l.path.join('/')));
  for (const [i, { array }] of la.entries()) {
    const other = lb[i]!.array;
    expect(array.shape).toEqual(other.shape);
    expect(array.dtype).toBe(other.dtype);
    expect(
      Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength).equals(
        Buffer.from(other.data.buffer, other.data.byteOffset, other.data.byteLength),
      ),
    ).toBe(true);
  }
}

async function decodeFile(path: string): Promise<FlaxTree> {
  return decodeFlaxMsgpack(new Uint8Array(await readFile(path)), path);
}

describe('committed fixtures (H=8, K=4, F=4)', () => {
  it('ParameterCheckpoint layout: every key, shape and value, gen_id and the 0-d int32 step', async () => {
    const tree = await decodeFile(CHECKPOINT);
    expect(Object.keys(tree as FlaxMap)).toEqual(['params', 'gen_id', 'step']);
    const step = (tree as FlaxMap).step as FlaxArray;
    expect(isFlaxArray(step)).toBe(true);
    expect({ shape: step.shape, dtype: step.dtype, value: step.data[0] }).toEqual({ shape: [], dtype: 'int32', value: 1234 });

    const ckpt = readParameterCheckpoint(tree, CHECKPOINT);
    expect({ layout: ckpt.layout, genId: ckpt.genId, step: ckpt.step }).toEqual({ layout: 'checkpoint', genId: 'velo_fixture', step: 1234 });
    const params = ckpt.params as FlaxMap;
    expect(Object.keys(params)).toEqual(['ff_mod_stack', 'lstm_init_state', 'rnn_params']);
    expect(Object.keys(params.ff_mod_stack as FlaxMap)).toEqual(['~']);
    expect(Object.keys(params.lstm_init_state as FlaxMap)).toEqual(['hidden', 'cell']);
    expect(Object.keys(params.rnn_params as FlaxMap)).toEqual(['linear', 'linear_1', 'linear_2', 'rnn/~/linear', 'rnn_to_controls', 'step_size']);
    expect(expectVeloParams(params, 8, 4, 4)).toBe(1985);
  });

  it('the tuple layout with the legacy namedtuple form reads as the same theta, lstm_init_state normalized', async () => {
    const raw = new Uint8Array(await readFile(TUPLE_LEGACY));
    expect(Buffer.from(raw).includes('fields')).toBe(true); // the legacy form is really in the file
    const tree = decodeFlaxMsgpack(raw, TUPLE_LEGACY);
    const ckpt = readParameterCheckpoint(tree, TUPLE_LEGACY);
    expect({ layout: ckpt.layout, genId: ckpt.genId, step: ckpt.step }).toEqual({ layout: 'tuple', genId: '', step: 0 });
    expect(Object.keys((ckpt.params as FlaxMap).lstm_init_state as FlaxMap)).toEqual(['hidden', 'cell']);
    expectVeloParams(ckpt.params, 8, 4, 4);
    expectSameArrays(ckpt.params, readParameterCheckpoint(await decodeFile(CHECKPOINT), CHECKPOINT).params);
  });

  it('the chunked file (chunks of 16 floats) reassembles to the unchunked arrays; its step is a numpy int64 scalar', async () => {
    const raw = new Uint8Array(await readFile(CHUNKED));
    expect(Buffer.from(raw).includes('__msgpack_chunked_array__')).toBe(true);
    const ckpt = readParameterCheckpoint(decodeFlaxMsgpack(raw, CHUNKED), CHUNKED);
    expect(ckpt.step).toBe(1234);
    expectVeloParams(ckpt.params, 8, 4, 4);
    expectSameArrays(ckpt.params, readParameterCheckpoint(await decodeFile(CHECKPOINT), CHECKPOINT).params);
  });

  it('are exactly what the README commands write', async () => {
    const cases: [string, string[]][] = [
      [CHECKPOINT, ['--layout', 'checkpoint', '--namedtuple', 'modern', '--gen-id', 'velo_fixture', '--step', '1234', '--step-kind', 'array']],
      [TUPLE_LEGACY, ['--layout', 'tuple', '--namedtuple', 'legacy']],
      [
        CHUNKED,
        ['--layout', 'checkpoint', '--namedtuple', 'modern', '--gen-id', 'velo_fixture', '--step', '1234', '--step-kind', 'npscalar', '--chunk-bytes', '64'],
      ],
    ];
    for (const [i, [committed, args]] of cases.entries()) {
      const out = join(dir, `again${i}`, 'params');
      const gin = join(dir, `again${i}`, 'config.gin');
      runVeloWriter(['--lstm', '8', '--param-inits', '4', '--ff', '4', ...args, '--gin', gin, '--out', out]);
      expect((await readFile(out)).equals(await readFile(committed)), committed).toBe(true);
      if (committed === CHECKPOINT) expect(await readFile(gin, 'utf8')).toBe(await readFile(CHECKPOINT_GIN, 'utf8'));
    }
  });

  it('without python3-msgpack and python3-numpy the fixture tests fail, saying what to install', () => {
    expect(() => pythonWithMsgpack(['/nonexistent/python3'])).toThrow(
      /needs python3 with msgpack and numpy; install them with `apt-get install -y python3 python3-msgpack python3-numpy` \(tried \/nonexistent\/python3: /,
    );
  });

  it('loadFlaxMsgpackFile reads a file and refuses one over maxBytes by its size', async () => {
    expectSameArrays(await loadFlaxMsgpackFile(CHECKPOINT), await decodeFile(CHECKPOINT));
    await expect(loadFlaxMsgpackFile(CHECKPOINT, { maxBytes: 1000 })).rejects.toThrow(`${CHECKPOINT}: the file is 8829 bytes, over the 1000-byte limit`);
    await expect(loadFlaxMsgpackFile(dir)).rejects.toThrow(`${dir}: not a regular file`);
    await expect(loadFlaxMsgpackFile(join(dir, 'missing'))).rejects.toThrow(/cannot read the file \(ENOENT/);
  });
});

describe('the released size (H=512, K=256, F=4), written at test time', () => {
  it('decodes with all 2,320,385 floats matching; chunked and legacy forms read the same', async () => {
    const plain = join(dir, 'velo', 'params');
    const chunked = join(dir, 'velo-chunked', 'params');
    const legacy = join(dir, 'velo-legacy', 'params');
    runVeloWriter(['--out', plain, '--gin', join(dir, 'velo', 'config.gin'), '--step', '7', '--gen-id', 'velo']);
    runVeloWriter(['--out', chunked, '--chunk-bytes', '1000000', '--step-kind', 'array', '--step', '7', '--gen-id', 'velo']);
    runVeloWriter(['--out', legacy, '--namedtuple', 'legacy', '--layout', 'tuple']);

    const bytes = new Uint8Array(await readFile(plain));
    expect(bytes.length).toBeGreaterThan(9_200_000);
    const start = performance.now();
    const tree = decodeFlaxMsgpack(bytes, plain);
    const ms = performance.now() - start;
    expect(ms).toBeLessThan(2000);
    const ckpt = readParameterCheckpoint(tree, plain);
    expect({ genId: ckpt.genId, step: ckpt.step }).toEqual({ genId: 'velo', step: 7 });
    expect(expectVeloParams(ckpt.params, 512, 256, 4)).toBe(2_320_385);

    const chunkedBytes = new Uint8Array(await readFile(chunked));
    expect(Buffer.from(chunkedBytes).includes('__msgpack_chunked_array__')).toBe(true);
    const chunkedCkpt = readParameterCheckpoint(decodeFlaxMsgpack(chunkedBytes, chunked), chunked);
    expect(chunkedCkpt.step).toBe(7);
    expectSameArrays(chunkedCkpt.params, ckpt.params);
    expectSameArrays(readParameterCheckpoint(await decodeFile(legacy), legacy).params, ckpt.params);

    const gin = readGinBindings(await readFile(join(dir, 'velo', 'config.gin'), 'utf8'), 'config.gin');
    expect([ginParam(gin.bindings, 'HyperV2', 'lstm_hidden_size'), ginParam(gin.bindings, 'HyperV2', 'param_inits')]).toEqual([512, 256]);
  });
});

describe('config.gin', () => {
  it("reads the fixture's operative config", async () => {
    const gin = readGinBindings(await readFile(CHECKPOINT_GIN, 'utf8'), CHECKPOINT_GIN);
    expect(gin.skipped).toEqual([]);
    expect(gin.imports).toEqual(['learned_optimization.outer_trainers.gradient_learner', 'learned_optimization.research.general_lopt.hyper_v2']);
    const b = gin.bindings;
    expect(b['HyperV2.lstm_hidden_size']).toBe(8);
    expect(b['HyperV2.param_inits']).toBe(4);
    expect(b['HyperV2.ff_hidden_size']).toBe(4);
    expect(b['HyperV2.use_bugged_loss_features']).toBe(false);
    expect(b['HyperV2.use_bugged_next_lstm_state']).toBe(false);
    expect(b['HyperV2.clip_param_scale_amount']).toBe(null);
    expect(b['HyperV2.initial_rms_decays']).toEqual([0.999]);
    expect(b['HyperV2.initial_momentum_decays']).toEqual([0.9, 0.99, 0.999]);
    expect(b['HyperV2.exp_mult']).toBe(0.001);
    expect(b['HyperV2.reparam_decay']).toBe(10);
    expect(b['run_train.lopt']).toEqual({ reference: 'HyperV2', evaluate: true });
    expect(b['run_train.outer_learner_fn']).toEqual({ reference: 'GradientLearner', evaluate: false });
    expect(b['run_train.train_log_dir']).toBe('/tmp/velo/train_log');
    expect(b['build_gradient_estimators.sample_task_family_fn']).toEqual({ reference: 'sample_task_family_from_task_fns', evaluate: false });
    expect(b['sample_task_family_from_task_fns.task_fns']).toEqual([
      'ImageMLP_FashionMnist8_Relu32',
      'ImageMLP_Cifar10BW8_Relu32',
      'Conv_Cifar10_16_32x64x64',
      'TransformerLM_LM1B_5layer_32width',
    ]);
    expect(b['sample_task_family_from_task_fns.weights']).toEqual({
      dict: [
        ['image', 0.5],
        ['text', 0.25],
        ['conv', 0.25],
      ],
    });
    expect(b['outer_train/AdamW.weight_decay']).toBe(0);
    expect(b['Adam.learning_rate']).toEqual({ macro: 'outer_lr' });
    expect(ginParam(b, 'Adam', 'learning_rate')).toBe(3e-5);
    expect(ginParam(b, 'HyperV2', 'lstm_hidden_size')).toBe(8);
    expect(ginParam(b, 'AdamW', 'weight_decay')).toBe(0);
    expect(ginParam(b, 'HyperV2', 'no_such_param')).toBeUndefined();
  });

  it('tricky literals, comments and continuations', () => {
    const text = [
      "a.s1 = 'it''s'  # adjacent strings join: 'its'",
      'a.s2 = "say \\"hi\\" # not a comment"',
      "a.s3 = 'tab\\there\\x41\\u00e9\\101' 'more'",
      "a.s4 = r'C:\\path\\n'",
      'a.n = [-1, 1e-3, .5, 1., 0x10, 1_000, -2.5E+2, 0, 0o17, 0b101]',
      'a.t = ((1,), (2), (), [], {}, (1, [2, (3,)]))',
      'a.multi = \\',
      '    [1,',
      '     2,  # a comment inside brackets',
      '',
      '     3]',
      "a.string_continued = 'abc\\",
      "def'",
      'a.dict = {"k": (1, 2), 3: None, (1, 2): True}',
      '',
      '   # an indented comment',
      'scope1/scope2/mod.sub.Conf.p = @outer/inner/Fn()',
      'LR = 0.25',
      'b.lr = %LR',
      'a.crlf = 5\r',
      'a.last = 7',
    ].join('\n');
    const gin = readGinBindings(text, 'tricky.gin');
    expect(gin.skipped).toEqual([]);
    expect(gin.bindings).toEqual({
      'a.s1': 'its',
      'a.s2': 'say "hi" # not a comment',
      'a.s3': 'tab\thereAéAmore',
      'a.s4': 'C:\\path\\n',
      'a.n': [-1, 0.001, 0.5, 1, 16, 1000, -250, 0, 15, 5],
      'a.t': [[1], 2, [], [], { dict: [] }, [1, [2, [3]]]],
      'a.multi': [1, 2, 3],
      'a.string_continued': 'abcdef',
      'a.dict': {
        dict: [
          ['k', [1, 2]],
          [3, null],
          [[1, 2], true],
        ],
      },
      'scope1/scope2/mod.sub.Conf.p': { reference: 'outer/inner/Fn', evaluate: true },
      LR: 0.25,
      'b.lr': { macro: 'LR' },
      'a.crlf': 5,
      'a.last': 7,
    });
    expect(ginParam(gin.bindings, 'Conf', 'p')).toEqual({ reference: 'outer/inner/Fn', evaluate: true });
    expect(ginParam(gin.bindings, 'sub.Conf', 'p')).toEqual({ reference: 'outer/inner/Fn', evaluate: true });
    expect(ginParam(gin.bindings, 'onf', 'p')).toBeUndefined();
    expect(ginParam(gin.bindings, 'b', 'lr')).toBe(0.25);
  });

  it('leaves out what it cannot read, says where and why, and reads on', () => {
    const text = [
      'good.a = 1',
      'this is not gin',
      'bad.complex = 1j',
      'bad.name = foo',
      "bad.bytes = b'x'",
      "bad.fstring = f'{x}'",
      'bad.big = 123456789012345678901234567890',
      'bad.leading_zero = 0123',
      "bad.unterminated = 'abc",
      'bad.trailing = 1 2',
      'bad.space = @a. b',
      'include "other.gin"',
      'Block:',
      '    x = 1',
      'bad.unclosed = [1, 2',
      'good.b = 2',
      `bad.deep = ${'['.repeat(40)}${']'.repeat(40)}`,
      'good.c = (3,)',
    ].join('\n');
    const gin = readGinBindings(text, 'bad.gin');
    expect(gin.bindings).toEqual({ 'good.a': 1, 'good.b': 2, 'good.c': [3] });
    const lines = gin.skipped.map((s) => s.line);
    expect(lines).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 17]); // the block (13) takes its indented line 14 with it
    const reasons = Object.fromEntries(gin.skipped.map((s) => [s.line, s.reason]));
    expect(reasons[3]).toMatch(/complex number/);
    expect(reasons[4]).toMatch(/expected a literal, found 'foo'/);
    expect(reasons[5]).toMatch(/bytes literal/);
    expect(reasons[6]).toMatch(/f-string/);
    expect(reasons[7]).toMatch(/beyond ±2\^53/);
    expect(reasons[8]).toMatch(/leading zero/);
    expect(reasons[9]).toMatch(/unterminated string/);
    expect(reasons[12]).toMatch(/include/);
    expect(reasons[13]).toMatch(/binding block/);
    expect(reasons[17]).toMatch(/deeper than 32 levels/);
    expect(gin.skipped[0]).toEqual({ line: 2, reason: expect.stringMatching(/expected '='/), text: 'this is not gin' });
  });

  it('scopes that disagree are an error; agreeing ones are not; text is bounded and never echoed raw', () => {
    const agree = readGinBindings('HyperV2.param_inits = 256\nouter/HyperV2.param_inits = 256\n', 'a.gin');
    expect(ginParam(agree.bindings, 'HyperV2', 'param_inits')).toBe(256);
    const disagree = readGinBindings('HyperV2.param_inits = 256\nouter/HyperV2.param_inits = 64\n', 'd.gin');
    expect(() => ginParam(disagree.bindings, 'HyperV2', 'param_inits', 'd.gin')).toThrow(
      "d.gin: HyperV2.param_inits: bound to different values in different scopes: 'HyperV2.param_inits' = 256, 'outer/HyperV2.param_inits' = 64",
    );
    expect(() => readGinBindings('x'.repeat(2 * 1024 * 1024), 'huge.gin')).toThrow(
      /huge\.gin: the gin config is 2097152 characters, over the 1048576-character limit/,
    );

    const escape = readGinBindings('\u001b]0;pwned\u0007 = 1\nok.a = "\u001b[2J"\n__proto__ = 5', 'esc.gin');
    expect(escape.skipped[0]!.text).not.toMatch(/\u001b/);
    expect(escape.bindings['ok.a']).toBe('\u001b[2J'); // values are data; they are escaped where printed
    expect(Object.hasOwn(escape.bindings, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    const start = performance.now();
    const junk = readGinBindings('a.b = [(\'x\', {"y": @z()}), -1e3, "\\\\"] # c\n'.repeat(15_000) + '(['.repeat(100_000), 'junk.gin');
    expect(Object.keys(junk.bindings)).toEqual(['a.b']);
    expect(performance.now() - start).toBeLessThan(1000);

    // An unclosed bracket on every line: reading resumes line by line, within a bounded amount of work.
    const start2 = performance.now();
    const unclosed = readGinBindings(`ok.first = 1\n${'a.b = [\n'.repeat(100_000)}ok.last = 2\n`, 'unclosed.gin');
    expect(unclosed.bindings['ok.first']).toBe(1);
    expect(unclosed.skipped.at(-1)!.reason).toBe('the rest of the file is not read: too many unclosed brackets');
    expect(performance.now() - start2).toBeLessThan(1000);
    const few = readGinBindings('a.b = [\nc.d = (1,\nok.last = 2\n', 'few.gin');
    expect(few.bindings).toEqual({ 'ok.last': 2 });
    expect(few.skipped.map((x) => x.line)).toEqual([1, 2]);
  });
});

// --- hostile and broken files ------------------------------------------------------------------

/** A minimal msgpack writer for crafting files (independent of the reader under test). */
const mp = {
  u8: (...b: number[]): Uint8Array => Uint8Array.from(b),
  cat: (...parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  },
  be: (n: number, width: 1 | 2 | 4): Uint8Array => {
    const b = new Uint8Array(width);
    for (let i = width - 1; i >= 0; i--, n = Math.floor(n / 256)) b[i] = n & 0xff;
    return b;
  },
  str: (s: string): Uint8Array => {
    const bytes = new TextEncoder().encode(s);
    if (bytes.length < 32) return mp.cat(mp.u8(0xa0 | bytes.length), bytes);
    return mp.cat(mp.u8(0xd9), mp.be(bytes.length, 1), bytes);
  },
  int: (n: number): Uint8Array => (n >= 0 && n < 128 ? mp.u8(n) : n >= 0 ? mp.cat(mp.u8(0xce), mp.be(n, 4)) : mp.cat(mp.u8(0xd2), mp.be(n >>> 0, 4))),
  map: (entries: [string | Uint8Array, Uint8Array][]): Uint8Array =>
    mp.cat(
      entries.length < 16 ? mp.u8(0x80 | entries.length) : mp.cat(mp.u8(0xde), mp.be(entries.length, 2)),
      ...entries.map(([k, v]) => mp.cat(typeof k === 'string' ? mp.str(k) : k, v)),
    ),
  arr: (items: Uint8Array[]): Uint8Array => mp.cat(items.length < 16 ? mp.u8(0x90 | items.length) : mp.cat(mp.u8(0xdc), mp.be(items.length, 2)), ...items),
  bin: (b: Uint8Array): Uint8Array => mp.cat(mp.u8(0xc6), mp.be(b.length, 4), b),
  ext: (type: number, payload: Uint8Array): Uint8Array => mp.cat(mp.u8(0xc9), mp.be(payload.length, 4), mp.u8(type & 0xff), payload),
  /** Flax's ndarray payload: (shape, dtype name, bytes). */
  payload: (shape: number[], dtype: string, data: Uint8Array): Uint8Array => mp.arr([mp.arr(shape.map(mp.int)), mp.str(dtype), mp.bin(data)]),
  f32: (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer),
  ndarray: (shape: number[], values: number[]): Uint8Array => mp.ext(1, mp.payload(shape, 'float32', mp.f32(values))),
};

/** The error for `bytes`, checking that it is a CheckpointError naming the label, and fast. */
function refusal(bytes: Uint8Array, limits: Partial<FlaxLimits> = {}, label = 'hostile.params'): string {
  const start = performance.now();
  let error: unknown;
  try {
    decodeFlaxMsgpack(bytes, label, limits);
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - start;
  expect(error, 'expected the bytes to be refused').toBeInstanceOf(CheckpointError);
  const message = (error as Error).message;
  expect(message.startsWith(`${label}: `)).toBe(true);
  expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  expect(ms, message).toBeLessThan(1000);
  return message;
}

describe('refusing hostile and broken files', () => {
  it('a 0-byte file, and files that are not Flax msgpack', () => {
    expect(refusal(new Uint8Array(0))).toBe('hostile.params: the file is empty (0 bytes); a Flax msgpack file holds at least one map');
    expect(refusal(new TextEncoder().encode('{"params": 1}'))).toMatch(/starts with byte 0x7b \('\{'\): this looks like JSON text/);
    expect(refusal(new TextEncoder().encode('PK\u0003\u0004'))).toMatch(/zip archive/);
    expect(refusal(mp.cat(mp.u8(0x93), new TextEncoder().encode('NUMPY')))).toMatch(/NumPy \.npy file/);
    expect(refusal(mp.u8(0x80, 0x04, 0x95, 0x00))).toMatch(/3 bytes follow the end of the top-level map.*looks like a Python pickle/);
    expect(refusal(mp.arr([mp.int(1)]))).toMatch(/starts with byte 0x91 \(a msgpack array\)/);
    expect(refusal(mp.cat(mp.map([['a', mp.int(1)]]), mp.u8(0xc0)))).toMatch(/byte 4: 1 bytes follow the end of the top-level map/);
  });

  it('a truncated file, cut at every offset', async () => {
    const bytes = new Uint8Array(await readFile(CHECKPOINT));
    let worst = 0;
    for (let cut = 0; cut < bytes.length; cut++) {
      const start = performance.now();
      const message = refusal(bytes.subarray(0, cut));
      worst = Math.max(worst, performance.now() - start);
      if (cut > 0) expect(message, `cut at ${cut}`).toMatch(/a truncated file\?|ends|declares .* bytes/);
    }
    expect(worst).toBeLessThan(1000);
    // A cut inside an array's data names the array and the shortfall.
    expect(refusal(bytes.subarray(0, 100), {}, 'cut')).toMatch(
      /^cut: at 'params\/ff_mod_stack\/~\/b0' \(byte 31\): an extension declares 79 bytes, but the data ends 67 bytes later \(a truncated file\?\)$/,
    );
  });

  it('random byte flips: a tree or a clear CheckpointError, never anything else', async () => {
    for (const file of [CHECKPOINT, TUPLE_LEGACY, CHUNKED]) {
      const bytes = new Uint8Array(await readFile(file));
      let s = 12345;
      let refused = 0;
      for (let trial = 0; trial < 1500; trial++) {
        const copy = Uint8Array.from(bytes);
        const flips = 1 + (trial % 4);
        for (let f = 0; f < flips; f++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          // Half the flips land in the first 300 bytes (structure), half anywhere.
          const at = f % 2 === 0 ? s % Math.min(300, copy.length) : s % copy.length;
          copy[at] = copy[at]! ^ (1 + ((s >>> 8) % 255));
        }
        const start = performance.now();
        try {
          const tree = decodeFlaxMsgpack(copy, 'flipped');
          expect(isFlaxMap(tree)).toBe(true);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(CheckpointError);
          expect((error as Error).message).toMatch(/^flipped: /);
          refused++;
        }
        expect(performance.now() - start).toBeLessThan(1000);
      }
      expect(refused).toBeGreaterThan(300);
    }
  });

  it('huge declared lengths fail before any allocation', () => {
    const big = 0xffffffff;
    expect(refusal(mp.cat(mp.u8(0xdf), mp.be(big, 4)))).toMatch(/a map of 4294967295 entries needs at least 8589934590 bytes, but the data ends 0 bytes later/);
    expect(refusal(mp.cat(mp.u8(0x81, 0xdb), mp.be(big, 4)))).toMatch(/a map key of 4294967295 bytes; at most 65536 are allowed/);
    expect(refusal(mp.cat(mp.u8(0x81), mp.str('k'), mp.u8(0xdb), mp.be(70_000, 4)))).toMatch(/at 'k' \(byte 3\): a string of 70000 bytes; at most 65536/);
    expect(refusal(mp.cat(mp.u8(0x81), mp.str('k'), mp.u8(0xda), mp.be(60_000, 2), mp.u8(0x61)))).toMatch(
      /a string declares 60000 bytes, but the data ends 1 bytes later/,
    );
    expect(refusal(mp.cat(mp.u8(0x81), mp.str('k'), mp.u8(0xc9), mp.be(big, 4), mp.u8(1)))).toMatch(/an extension declares 4294967296 bytes/);
    const hugeBin = mp.cat(mp.u8(0x93), mp.arr([mp.int(4)]), mp.str('float32'), mp.u8(0xc6), mp.be(big, 4));
    expect(refusal(mp.map([['w', mp.ext(1, hugeBin)]]))).toMatch(
      /at 'w' \(byte \d+\): the ndarray data declares 4294967295 bytes, but the ndarray payload ends 0 bytes later$/,
    );
    const hugeShape = mp.cat(mp.u8(0x93, 0xdd), mp.be(big, 4));
    expect(refusal(mp.map([['w', mp.ext(1, hugeShape)]]))).toMatch(
      /an ndarray shape, which must be a msgpack array of integers, declares 4294967295 values, more than the 0 bytes left/,
    );
    expect(refusal(mp.map([['w', mp.ext(1, mp.payload([2 ** 31, 2 ** 31], 'float32', new Uint8Array(0)))]]))).toMatch(
      /an ndarray dimension of 2147483648; at most 268435456/,
    );
    expect(refusal(mp.map([['w', mp.ext(1, mp.payload([65536, 65536], 'float32', new Uint8Array(0)))]]))).toMatch(
      /shape \[65536, 65536\] has over 268435456 elements/,
    );
    expect(refusal(mp.map([['w', mp.ext(1, mp.payload(Array(40).fill(1), 'float32', mp.f32([1])))]]))).toMatch(/40 dimensions; at most 32/);
    expect(refusal(mp.map([['w', mp.ndarray([2], [1, 2])]]), { maxBytes: 10 })).toMatch(/the file is 3\d bytes, over the 10-byte limit/);
  });

  it('deep nesting and too many values', () => {
    const depth = 200_000;
    const deep = new Uint8Array(depth * 3 + 1);
    for (let i = 0; i < depth; i++) deep.set([0x81, 0xa1, 0x61], i * 3); // {"a": {"a": …
    deep[depth * 3] = 0xc0;
    expect(refusal(deep)).toMatch(/at 'a\/a\/a\/a\/…56 more…\/a\/a\/a\/a' \(byte 192\): maps nested deeper than 64 levels/);
    expect(refusal(deep.subarray(0, 31), { maxDepth: 100 })).toMatch(/a truncated file/);

    const wide = mp.map(Array.from({ length: 3000 }, (_, i): [string, Uint8Array] => [`k${i}`, mp.int(i)]));
    expect(refusal(wide, { maxValues: 1000 })).toMatch(/more than 1000 msgpack values \(the maxValues limit\)/);
    expect(Object.keys(decodeFlaxMsgpack(wide, 'wide') as FlaxMap)).toHaveLength(3000);
  });

  it('wrong extension payloads', () => {
    const inMap = (value: Uint8Array): Uint8Array => mp.map([['w', value]]);
    const f = mp.f32([1, 2]);
    expect(refusal(inMap(mp.ext(1, mp.str('float32'))))).toMatch(
      /an ndarray payload, which must be the msgpack array \(shape, dtype name, bytes\), but it starts with msgpack type 0xa7/,
    );
    expect(refusal(inMap(mp.ext(1, mp.arr([mp.arr([mp.int(2)]), mp.str('float32')]))))).toMatch(/holds 2 values/);
    expect(refusal(inMap(mp.ext(1, mp.arr([mp.int(2), mp.str('float32'), mp.bin(f)]))))).toMatch(
      /an ndarray shape, which must be a msgpack array of integers, but it starts with msgpack type 0x02/,
    );
    expect(refusal(inMap(mp.ext(1, mp.arr([mp.arr([mp.int(-2)]), mp.str('float32'), mp.bin(f)]))))).toMatch(
      /dimension must be a non-negative integer, found -2/,
    );
    expect(refusal(inMap(mp.ext(1, mp.arr([mp.arr([mp.str('2')]), mp.str('float32'), mp.bin(f)]))))).toMatch(
      /dimension must be a non-negative integer, found msgpack type 0xa1/,
    );
    expect(refusal(inMap(mp.ext(1, mp.arr([mp.arr([mp.int(2)]), mp.int(7), mp.bin(f)]))))).toMatch(/dtype name must be a string, found msgpack type 0x07/);
    expect(refusal(inMap(mp.ext(1, mp.arr([mp.arr([mp.int(2)]), mp.str('float32'), mp.str('abcdefgh')]))))).toMatch(
      /ndarray data must be a msgpack byte string, found msgpack type 0xa8/,
    );
    expect(refusal(inMap(mp.ext(1, mp.cat(mp.payload([2], 'float32', f), mp.u8(0xc0)))))).toMatch(
      /1 bytes follow the \(shape, dtype, bytes\) triple inside the ndarray payload/,
    );
    expect(refusal(inMap(mp.ext(2, mp.arr([mp.int(1), mp.int(2)]))))).toMatch(/a complex number \(msgpack extension 2\)/);
    expect(refusal(inMap(mp.ext(5, mp.u8(1, 2))))).toMatch(/msgpack extension type 5; Flax writes only 1 \(ndarray\), 2 \(complex\) and 3 \(numpy scalar\)/);
    expect(refusal(inMap(mp.ext(-1, mp.u8(1, 2, 3, 4))))).toMatch(/msgpack extension type -1/);
    expect(refusal(inMap(mp.ext(3, mp.payload([2], 'float32', f))))).toMatch(/a numpy scalar \(extension 3\) with shape \[2\]; a scalar has shape \[\]/);
    expect(refusal(inMap(mp.u8(0xd4, 0x01, 0x90)))).toMatch(/holds 0 values/); // fixext 1 holding an empty array
    // A well-formed fixext scalar reads.
    const scalar = decodeFlaxMsgpack(inMap(mp.ext(3, mp.payload([], 'int32', new Uint8Array(new Int32Array([-5]).buffer)))), 's') as FlaxMap;
    expect(scalar.w).toMatchObject({ kind: 'array', shape: [], dtype: 'int32' });
    expect((scalar.w as FlaxArray).data[0]).toBe(-5);
  });

  it('shape and byte count that disagree', () => {
    expect(refusal(mp.map([['params', mp.map([['w', mp.ext(1, mp.payload([3, 2], 'float32', mp.f32([1, 2, 3, 4, 5])))]])]]))).toBe(
      "hostile.params: at 'params/w' (byte 29): shape [3, 2] of float32 needs 6 × 4 = 24 bytes, but the data holds 20",
    );
    expect(refusal(mp.map([['w', mp.ext(1, mp.payload([0], 'float32', mp.f32([1])))]]))).toMatch(
      /shape \[0\] of float32 needs 0 × 4 = 0 bytes, but the data holds 4/,
    );
    const empty = decodeFlaxMsgpack(mp.map([['w', mp.ext(1, mp.payload([0, 5], 'float32', new Uint8Array(0)))]]), 'e') as FlaxMap;
    expect(empty.w).toMatchObject({ shape: [0, 5], dtype: 'float32' });
  });

  it('dtypes other than float32, float64, int32, int64', () => {
    for (const dtype of ['bool', 'int8', 'uint8', 'float16', 'bfloat16', 'complex64', '<U3', 'object', 'float32\u001b[2J']) {
      const message = refusal(mp.map([['w', mp.ext(1, mp.payload([1], dtype, new Uint8Array(4)))]]));
      expect(message).toMatch(/dtype '.*' is not supported; supported: float32, float64, int32, int64 \(at most 65536 elements\)$/);
    }
    const f64 = decodeFlaxMsgpack(mp.map([['w', mp.ext(1, mp.payload([2], 'float64', new Uint8Array(new Float64Array([0.1, -2]).buffer)))]]), 'f') as FlaxMap;
    expect(Array.from((f64.w as FlaxArray).data)).toEqual([0.1, -2]);
    const i64 = new Uint8Array(new BigInt64Array([-3n, 2n ** 53n - 1n]).buffer);
    expect(Array.from(((decodeFlaxMsgpack(mp.map([['w', mp.ext(1, mp.payload([2], 'int64', i64))]]), 'i') as FlaxMap).w as FlaxArray).data)).toEqual([
      -3,
      2 ** 53 - 1,
    ]);
    const tooBig = new Uint8Array(new BigInt64Array([2n ** 53n]).buffer);
    expect(refusal(mp.map([['w', mp.ext(1, mp.payload([1], 'int64', tooBig))]]))).toMatch(/int64 element 0 is beyond ±2\^53 - 1/);
    expect(refusal(mp.map([['w', mp.ext(1, mp.payload([70_000], 'int64', new Uint8Array(0)))]]))).toMatch(/an int64 array of 70000 elements/);
  });

  it('keys and values Flax never writes', () => {
    expect(refusal(mp.cat(mp.u8(0x82), mp.str('a'), mp.int(1), mp.str('a'), mp.int(2)))).toMatch(
      /at the top level \(byte 4\): the key 'a' appears twice in one map/,
    );
    expect(refusal(mp.cat(mp.u8(0x81), mp.int(1), mp.int(2)))).toMatch(/a map key of msgpack type 0x01; Flax state dicts have string keys only/);
    expect(refusal(mp.map([['a', mp.arr([mp.int(1)])]]))).toMatch(/a msgpack array outside an ndarray payload/);
    expect(refusal(mp.map([['a', mp.bin(mp.u8(1))]]))).toMatch(/a msgpack byte string outside an ndarray payload/);
    expect(refusal(mp.map([['a', mp.u8(0xc1)]]))).toMatch(/byte 0xc1 is not a msgpack type/);
    expect(refusal(mp.cat(mp.u8(0x81, 0xa2, 0xff, 0xfe), mp.int(1)))).toMatch(/a map key that is not valid UTF-8/);
    expect(refusal(mp.map([['a', mp.cat(mp.u8(0xcf), mp.be(0x00200000, 4), mp.be(0, 4))]]))).toMatch(/an integer beyond ±2\^53 - 1/);
    // Keys with control characters are escaped in messages.
    expect(refusal(mp.map([['\u001b[31mred', mp.arr([])]]))).toMatch(/at '\\u001b\[31mred'/);

    const proto = decodeFlaxMsgpack(mp.map([['__proto__', mp.map([['polluted', mp.int(1)]])]]), 'p') as FlaxMap;
    expect(Object.hasOwn(proto, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);

    const scalars = decodeFlaxMsgpack(
      mp.map([
        ['n', mp.u8(0xc0)],
        ['t', mp.u8(0xc3)],
        ['f', mp.u8(0xc2)],
        ['neg', mp.u8(0xe0)],
        ['i8', mp.u8(0xd0, 0x80)],
        ['f32', mp.u8(0xca, 0x3f, 0xc0, 0, 0)],
        ['f64', mp.cat(mp.u8(0xcb), mp.be(0x3ff80000, 4), mp.be(0, 4))],
        ['u64', mp.cat(mp.u8(0xcf), mp.be(0x001fffff, 4), mp.be(0xffffffff, 4))],
        ['s', mp.str('ü'.repeat(20))],
      ]),
      'ok',
    );
    expect(scalars).toEqual({ n: null, t: true, f: false, neg: -32, i8: -128, f32: 1.5, f64: 1.5, u64: 2 ** 53 - 1, s: 'ü'.repeat(20) });
  });

  it('chunked arrays that do not reassemble', () => {
    const chunked = (entries: [string, Uint8Array][]): Uint8Array => mp.map([['w', mp.map(entries)]]);
    const flag: [string, Uint8Array] = ['__msgpack_chunked_array__', mp.u8(0xc3)];
    const shape = (dims: number[]): [string, Uint8Array] => ['shape', mp.map(dims.map((d, i): [string, Uint8Array] => [String(i), mp.int(d)]))];
    const chunks = (...c: Uint8Array[]): [string, Uint8Array] => ['chunks', mp.map(c.map((v, i): [string, Uint8Array] => [String(i), v]))];

    const good = decodeFlaxMsgpack(chunked([flag, shape([2, 3]), chunks(mp.ndarray([4], [1, 2, 3, 4]), mp.ndarray([2], [5, 6]))]), 'c') as FlaxMap;
    expect(good.w).toMatchObject({ kind: 'array', shape: [2, 3], dtype: 'float32' });
    expect(Array.from((good.w as FlaxArray).data)).toEqual([1, 2, 3, 4, 5, 6]);

    expect(refusal(chunked([flag, shape([2, 3]), chunks(mp.ndarray([4], [1, 2, 3, 4]))]))).toBe(
      "hostile.params: at 'w' (byte 3): a chunked array ('__msgpack_chunked_array__'): shape [2, 3] needs 6 elements, the chunks hold 4",
    );
    expect(refusal(chunked([flag, shape([1]), chunks()]))).toMatch(/: no chunks$/);
    expect(refusal(chunked([flag, shape([2]), chunks(mp.ndarray([1, 2], [1, 2]))]))).toMatch(
      /chunk 0 must be a 1-D array, found a float32 array of shape \[1, 2\]/,
    );
    expect(refusal(chunked([flag, shape([2]), chunks(mp.ndarray([1], [1]), mp.ext(1, mp.payload([1], 'int32', new Uint8Array(4))))]))).toMatch(
      /chunk 1 is int32, chunk 0 is float32/,
    );
    expect(refusal(chunked([['__msgpack_chunked_array__', mp.u8(0xc2)], shape([1]), chunks(mp.ndarray([1], [1]))]))).toMatch(
      /flag must be true, found boolean false/,
    );
    expect(refusal(chunked([flag, shape([1]), chunks(mp.ndarray([1], [1])), ['extra', mp.int(1)]]))).toMatch(
      /expected exactly the keys __msgpack_chunked_array__, shape, chunks; found '__msgpack_chunked_array__', 'shape', 'chunks', 'extra'/,
    );
    expect(refusal(chunked([flag, ['shape', mp.map([['1', mp.int(1)]])], chunks(mp.ndarray([1], [1]))]))).toMatch(
      /shape must have the keys "0" … "0", found '1'/,
    );
    expect(refusal(chunked([flag, shape([-1]), chunks(mp.ndarray([1], [1]))]))).toMatch(/a dimension must be a non-negative integer, found number -1/);
    expect(refusal(chunked([flag, ['shape', mp.str('x')], chunks(mp.ndarray([1], [1]))]))).toMatch(/shape must be a map \{"0": d0, …\}, found the string 'x'/);
    expect(refusal(chunked([flag, shape([1]), ['chunks', mp.ndarray([1], [1])]]))).toMatch(
      /chunks must be a map \{"0": array, …\}, found a float32 array of shape \[1\]/,
    );
    expect(refusal(chunked([flag, shape([1]), chunks(mp.int(3))]))).toMatch(/chunk 0 must be a 1-D array, found number 3/);
  });

  it('the legacy namedtuple form: converted when well formed, refused with a repeated field, kept otherwise', () => {
    const legacy = (fields: string[], name = mp.str('LSTMState')): Uint8Array =>
      mp.map([
        [
          'state',
          mp.map([
            ['name', name],
            ['fields', mp.map(fields.map((f, i): [string, Uint8Array] => [String(i), mp.str(f)]))],
            ['values', mp.map(fields.map((_, i): [string, Uint8Array] => [String(i), mp.int(i + 10)]))],
          ]),
        ],
      ]);
    expect(decodeFlaxMsgpack(legacy(['hidden', 'cell']), 'l')).toEqual({ state: { hidden: 10, cell: 11 } });
    expect(refusal(legacy(['hidden', 'hidden']))).toMatch(/at 'state' \(byte 7\): the namedtuple 'LSTMState' \(old Flax form\) names the field 'hidden' twice/);
    // Not that shape (name not a string): left as the map it is.
    expect(decodeFlaxMsgpack(legacy(['a'], mp.int(1)), 'l')).toEqual({ state: { name: 1, fields: { '0': 'a' }, values: { '0': 10 } } });
  });

  it('readParameterCheckpoint refuses other layouts clearly', () => {
    expect(() => readParameterCheckpoint({ a: 1 }, 'x')).toThrow(
      "x: not a learned_optimization parameter file: expected the keys params, gen_id, step (ParameterCheckpoint) or 0, 1, 2 (a (theta, gen_id, step) tuple); found 'a'",
    );
    expect(() => readParameterCheckpoint({ params: {}, gen_id: 3, step: 0 }, 'x')).toThrow("x: 'gen_id': expected a string, found number 3");
    expect(() => readParameterCheckpoint({ params: {}, gen_id: '', step: 1.5 }, 'x')).toThrow("x: 'step': expected an integer step");
    expect(() => readParameterCheckpoint({ '0': 1, '1': '', '2': 0 }, 'x')).toThrow("x: '0': the parameters must be a map, found number 1");
  });
});
