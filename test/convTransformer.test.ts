import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { adam } from '../src/optim/baselines/adam.js';
import { Rng } from '../src/random/rng.js';
import type { Params } from '../src/tree/params.js';
import { conv3x3, convName, convTask, parseConvName, type ConvConfig } from '../tasks/conv.js';
import { loadText } from '../tasks/data/text.js';
import {
  attentionLogitScale,
  causalSelfAttention,
  parseTransformerName,
  transformerName,
  transformerTask,
  type TransformerConfig,
} from '../tasks/transformer.js';
import type { Task } from '../tasks/types.js';
import { populationVsSingles, trainWithAdam } from './helpers/taskChecks.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const conv = (o: Partial<ConvConfig> = {}): ConvConfig => ({
  dataset: 'mnist',
  imageSize: 8,
  width: 4,
  batchSize: 8,
  parametrization: 'mup',
  ...o,
});
const tiny = (o: Partial<TransformerConfig> = {}): TransformerConfig => ({
  width: 8,
  depth: 1,
  heads: 2,
  seqLen: 8,
  batchSize: 4,
  parametrization: 'mup',
  ...o,
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());

function initialLoss(task: Task, seed = 3): number[] {
  const params = task.init([seed, seed + 1]);
  const batch = task.batches('train', [seed, seed + 1]).next();
  const loss = task.loss(params, batch);
  const out = values(loss);
  tf.dispose([Object.values(params), Object.values(batch), loss]);
  return out;
}

describe('names and configs', () => {
  it('canonical names round-trip', () => {
    expect(convName(conv({ width: 16, batchSize: 128 }))).toBe('conv-mnist8-w16-b128-mup');
    const fashion = parseConvName('conv-fashion16-w32-b64-sp');
    expect(fashion).toEqual({ dataset: 'fashion-mnist', imageSize: 16, width: 32, batchSize: 64, parametrization: 'sp' });
    expect(convName(fashion)).toBe('conv-fashion16-w32-b64-sp');
    const name = 'transformer-mobydick-w64-d2-h4-t32-b16-mup';
    expect(transformerName(parseTransformerName(name))).toBe(name);
    expect(convTask(conv()).meta).toMatchObject({ name: 'conv-mnist8-w4-b8-mup', family: 'conv', width: 4, depth: 2, batchSize: 8 });
    const meta = transformerTask(tiny()).meta;
    expect(meta).toMatchObject({ family: 'transformer', dataset: 'moby-dick', width: 8, depth: 1, batchSize: 4 });
    const V = loadText('moby-dick').vocabSize;
    // embeddings + one block (2 norms, 4 d×d, 2 MLP) + final norm + readout
    expect(meta.paramCount).toBe(V * 8 + 8 * 8 + 2 * 16 + 4 * 64 + 2 * 8 * 32 + 16 + 8 * V);
  });

  it('unparseable names say the allowed form', () => {
    expect(() => parseConvName('conv-mnist8-w16')).toThrow(/conv-\{mnist\|fashion\}\{8\|16\|28\}-w\{width\}-b\{batchSize\}-\{mup\|sp\}/);
    expect(() => parseConvName('conv-mnist12-w16-b128-mup')).toThrow(/cannot parse/);
    expect(() => parseConvName('conv-mnist8-w016-b128-mup')).toThrow(/cannot parse/);
    expect(() => parseTransformerName('transformer-mobydick-w64-d2-h4-b16-mup')).toThrow(/expected transformer-mobydick-w\{width\}-d\{depth\}/);
    expect(() => parseTransformerName('transformer-mobydick-w64-d2-h3-t32-b16-mup')).toThrow(/'heads' must divide width/);
  });

  it('bad configs name the task, the field, the value and what is allowed', () => {
    expect(() => convTask(conv({ imageSize: 12 as never }))).toThrow("conv task: option 'imageSize' must be one of 8, 16, 28; got 12");
    expect(() => convTask(conv({ dataset: 'cifar' as never }))).toThrow(`conv task: option 'dataset' must be one of "mnist", "fashion-mnist"; got "cifar"`);
    expect(() => convTask(conv({ width: 0 }))).toThrow("conv task: option 'width' must be an integer in [1, 4096]; got 0");
    expect(() => convTask(conv({ parametrization: 'ntk' as never }))).toThrow(`conv task: option 'parametrization' must be one of "mup", "sp"; got "ntk"`);
    expect(() => convTask({ ...conv(), widht: 3 } as never)).toThrow(
      "conv task: unknown option 'widht'; allowed options: dataset, imageSize, width, batchSize, parametrization",
    );
    expect(() => transformerTask(tiny({ heads: 3 }))).toThrow("transformer task: option 'heads' must divide width (8); got 3");
    expect(() => transformerTask(tiny({ seqLen: 1.5 }))).toThrow("transformer task: option 'seqLen' must be an integer in [1, 4096]; got 1.5");
    expect(() => transformerTask({ width: 8 } as never)).toThrow("transformer task: option 'depth' is required");
  });
});

describe('μP details', () => {
  it('conv: mupScale, zero output layer, initial loss exactly ln 10', () => {
    const task = convTask(conv({ width: 4 }));
    expect(task.mupScale).toEqual({ 'conv1/kernel': 1, 'conv1/bias': 1, 'conv2/kernel': 1 / 36, 'conv2/bias': 1, 'out/kernel': 1, 'out/bias': 1 });
    expect(Object.values(convTask(conv({ parametrization: 'sp' })).mupScale).every((s) => s === 1)).toBe(true);
    const p = task.init([5]);
    expect(values(p['out/kernel']!).every((v) => v === 0) && values(p['out/bias']!).every((v) => v === 0)).toBe(true);
    // μP biases N(0, 1); conv weights N(0, 1/fan_in) truncated at 2σ
    expect(values(p['conv2/kernel']!).every((v) => Math.abs(v) <= 2 / 6 + 1e-7)).toBe(true);
    expect(values(p['conv1/bias']!).some((v) => v !== 0)).toBe(true);
    tf.dispose(Object.values(p));
    for (const l of initialLoss(task)) expect(l).toBeCloseTo(Math.log(10), 6);
    const sp = convTask(conv({ parametrization: 'sp' })).init([5]);
    expect(values(sp['out/kernel']!).some((v) => v !== 0)).toBe(true);
    expect(values(sp['conv1/bias']!).every((v) => v === 0)).toBe(true);
    tf.dispose(Object.values(sp));
  });

  it('transformer: mupScale, zero readout, initial loss exactly ln V', () => {
    const task = transformerTask(tiny());
    const s = task.mupScale;
    for (const m of ['query', 'key', 'value', 'out']) expect(s[`block0/attn/${m}`]).toBe(1 / 8);
    expect([s['block0/mlp/in'], s['block0/mlp/out']]).toEqual([1 / 8, 1 / 32]);
    for (const n of ['embed/tokens', 'embed/positions', 'block0/norm1/scale', 'block0/norm2/bias', 'final_norm/scale', 'readout/kernel']) {
      expect(s[n]).toBe(1);
    }
    expect(Object.values(transformerTask(tiny({ parametrization: 'sp' })).mupScale).every((v) => v === 1)).toBe(true);
    const p = task.init([5]);
    expect(values(p['readout/kernel']!).every((v) => v === 0)).toBe(true);
    expect(values(p['block0/norm1/scale']!).every((v) => v === 1)).toBe(true);
    tf.dispose(Object.values(p));
    const V = loadText('moby-dick').vocabSize;
    for (const l of initialLoss(task)) expect(l).toBeCloseTo(Math.log(V), 5);
  });

  it('attention logits are scaled by 1/d_head under μP, 1/√d_head under SP (hand-computed)', () => {
    expect(attentionLogitScale('mup', 16)).toBe(1 / 16);
    expect(attentionLogitScale('sp', 16)).toBe(1 / 4);
    const [T, d, H] = [3, 4, 2];
    const dh = d / H;
    const rng = Rng.from('attention');
    const draw = (n: number) => Array.from({ length: n }, () => rng.normal());
    const x = draw(T * d);
    const w = { query: draw(d * d), key: draw(d * d), value: draw(d * d), out: draw(d * d) };
    const mm = (a: number[], b: number[], n: number, k: number, m: number) =>
      Array.from({ length: n * m }, (_, i) => {
        let s = 0;
        for (let j = 0; j < k; j++) s += a[Math.floor(i / m) * k + j]! * b[j * m + (i % m)]!;
        return s;
      });
    const reference = (scale: number): number[] => {
      const [q, k, v] = [mm(x, w.query, T, d, d), mm(x, w.key, T, d, d), mm(x, w.value, T, d, d)];
      const o = new Array<number>(T * d).fill(0);
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < T; t++) {
          const logits = [];
          for (let s = 0; s <= t; s++) {
            let dot = 0;
            for (let j = 0; j < dh; j++) dot += q[t * d + h * dh + j]! * k[s * d + h * dh + j]!;
            logits.push(dot * scale);
          }
          const mx = Math.max(...logits);
          const e = logits.map((l) => Math.exp(l - mx));
          const z = e.reduce((a, b) => a + b, 0);
          for (let s = 0; s <= t; s++) for (let j = 0; j < dh; j++) o[t * d + h * dh + j]! += (e[s]! / z) * v[s * d + h * dh + j]!;
        }
      }
      return mm(o, w.out, T, d, d);
    };
    const mat = (a: number[]) => tf.tensor(a, [1, d, d]);
    const ws = { query: mat(w.query), key: mat(w.key), value: mat(w.value), out: mat(w.out) };
    const xt = tf.tensor(x, [1, 1, T, d]);
    for (const p of ['mup', 'sp'] as const) {
      const got = causalSelfAttention(xt, ws, H, attentionLogitScale(p, dh));
      const want = reference(p === 'mup' ? 1 / dh : 1 / Math.sqrt(dh));
      values(got).forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 4));
      got.dispose();
    }
    // The two scales give different outputs, so the check above tells them apart.
    expect(Math.abs(reference(1 / dh)[d]! - reference(1 / Math.sqrt(dh))[d]!)).toBeGreaterThan(1e-3);
    tf.dispose([xt, Object.values(ws)]);
  });

  it('the model applies them: μP with query·√d_head and readout·d_model equals SP', () => {
    const [sp, mup] = [transformerTask(tiny({ parametrization: 'sp' })), transformerTask(tiny())];
    const dh = 8 / 2;
    const params = sp.init([4]);
    const batch = sp.batches('train', [4]).next();
    const rescaled = (queryFactor: number): Params => ({
      ...params,
      'block0/attn/query': tf.mul(params['block0/attn/query']!, queryFactor),
      'readout/kernel': tf.mul(params['readout/kernel']!, 8),
    });
    const [same, unscaled] = [rescaled(Math.sqrt(dh)), rescaled(1)];
    const [a, b, c] = [sp.loss(params, batch), mup.loss(same, batch), mup.loss(unscaled, batch)];
    expect(values(b)[0]).toBeCloseTo(values(a)[0]!, 5);
    expect(Math.abs(values(c)[0]! - values(a)[0]!)).toBeGreaterThan(1e-4);
    const made = [same, unscaled].flatMap((r) => [r['block0/attn/query']!, r['readout/kernel']!]);
    tf.dispose([a, b, c, made, Object.values(params), Object.values(batch)]);
  });
});

describe('conv3x3 (native-kernel gradients)', () => {
  it.each([
    [1, 1, 8],
    [1, 3, 6],
    [2, 1, 4],
    [2, 5, 8],
  ] as const)('stride %i, %i channels, %i px: value and gradients equal tf.conv2d', (stride, C, H) => {
    const x = tf.randomNormal([2, H, H, C], 0, 1, 'float32', 1) as tf.Tensor4D;
    const k = tf.randomNormal([3, 3, C, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const w = tf.randomNormal([2, H / stride, H / stride, 4], 0, 1, 'float32', 3);
    const f = (conv: (x: tf.Tensor4D, k: tf.Tensor4D) => tf.Tensor) => tf.grads((a, b) => tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), w)))([x, k]);
    const want = f((a, b) => tf.conv2d(a, b, stride, 'same'));
    const got = f((a, b) => conv3x3(a, b, stride));
    want.forEach((g, i) => {
      const err = tf.tidy(() => tf.max(tf.abs(tf.sub(g, got[i]!))).dataSync()[0]!);
      expect(err).toBeLessThan(1e-4);
    });
    const skipped = tf.grad((a) => tf.sum(conv3x3(a as tf.Tensor4D, k, stride, false)))(x);
    expect(values(skipped).every((v) => v === 0)).toBe(true);
    tf.dispose([x, k, w, want, got, skipped]);
  });
});

describe('population axis', () => {
  it.each(['mup', 'sp'] as const)('conv (%s): P=3 batched loss and gradients equal the singles', (parametrization) => {
    expect(populationVsSingles(convTask(conv({ parametrization })), [1, 2, 1])).toBeLessThanOrEqual(1e-4);
  });
  it.each(['mup', 'sp'] as const)('transformer (%s): P=3 batched loss and gradients equal the singles', (parametrization) => {
    const task = transformerTask(tiny({ parametrization, depth: 2 }));
    expect(populationVsSingles(task, [1, 2, 1])).toBeLessThanOrEqual(1e-4);
  });
});

describe('training', () => {
  it('normalizeLoss clips to [0, 1.5 ln C], non-finite → the maximum', () => {
    const task = convTask(conv());
    const max = 1.5 * Math.log(10);
    const l = tf.tensor1d([Number.NaN, Infinity, -Infinity, -1, 1, 100]);
    const n = task.normalizeLoss(l);
    values(n).forEach((v, i) => expect(v).toBeCloseTo([max, max, max, 0, 1, max][i]!, 6));
    tf.dispose([l, n]);
  });

  it('Adam lowers the conv loss (8×8 MNIST)', async () => {
    // SP: plain Adam ignores μP's per-tensor scales (μAdam is the μP twin's optimizer).
    const { first, last } = await trainWithAdam(convTask(conv({ width: 16, batchSize: 64, parametrization: 'sp' })), 120, 0.03);
    expect(last).toBeLessThan(0.8 * first);
  });

  it('Adam lowers the transformer loss clearly below ln V', async () => {
    const V = loadText('moby-dick').vocabSize;
    const task = transformerTask(tiny({ width: 32, heads: 4, seqLen: 16, batchSize: 8 }));
    const { first, last } = await trainWithAdam(task, 120, 0.01);
    expect(first).toBeCloseTo(Math.log(V), 4);
    expect(last).toBeLessThan(0.75 * Math.log(V));
  });

  it.each([
    ['conv', () => convTask(conv())],
    ['transformer', () => transformerTask(tiny())],
  ] as const)('%s: no tensor growth over 100 train steps', (_, make) => {
    const task = make();
    const opt = adam({ learningRate: 1e-3 });
    let params: Params = task.init([7]);
    let state = opt.init(params);
    const stream = task.batches('train', [7]);
    const names = Object.keys(params);
    const step = () => {
      const batch = stream.next();
      const { value, grads } = tf.valueAndGrads(
        (...ws: tf.Tensor[]) => tf.sum(task.loss(Object.fromEntries(names.map((n, i) => [n, ws[i]!])), batch)) as tf.Scalar,
      )(names.map((n) => params[n]!));
      ({ params, state } = opt.step(params, Object.fromEntries(names.map((n, i) => [n, grads[i]!])), state));
      tf.dispose([value, grads, Object.values(batch)]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let k = 0; k < 100; k++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([Object.values(params), state.inner as tf.TensorContainer]);
  });
});
