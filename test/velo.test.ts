// VeLO (src/lopt/velo): API contract, shapes, population batching and memory. Its exactness
// against a float64 re-implementation of the upstream source is in veloExact.test.ts.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { createLearnedOptimizer } from '../src/lopt/registry.js';
import { stackThetas } from '../src/lopt/theta.js';
import { velo } from '../src/lopt/velo/velo.js';
import { factoredDims } from '../src/lopt/features.js';
import { Rng } from '../src/random/rng.js';
import type { Params } from '../src/tree/params.js';
import { disposeState } from '../src/tree/stateTree.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const SMALL = { lstmHiddenSize: 8, paramInits: 4 };

function randomTensor(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Array.from({ length: n }, () => scale * rng.normal()),
    shape,
  );
}

/** Parameters of every shape VeLO treats differently: matrix, bias, scalar, tied dims, rank 5, conv kernel, zeros. */
function shapes(): Record<string, number[]> {
  return { w: [5, 3], b: [3], s: [], tied: [4, 4], r5: [2, 3, 2, 2, 3], conv: [3, 3, 2, 4], z: [2, 3] };
}

function paramsFor(seed: number): Params {
  const rng = Rng.from(seed);
  const out: Params = {};
  for (const [name, shape] of Object.entries(shapes())) out[name] = name === 'z' ? tf.zeros(shape) : randomTensor(rng, shape);
  return out;
}

function gradsFor(seed: number, step: number): Params {
  const rng = Rng.from(seed).fork(`g${step}`);
  const out: Params = {};
  for (const [name, shape] of Object.entries(shapes())) out[name] = randomTensor(rng, shape, 0.1);
  return out;
}

describe('velo', () => {
  it('has the released layout: 2,320,385 meta-parameters at LSTM 512 and 256 banks', () => {
    const lo = velo();
    const count = Object.values(lo.thetaShapes).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    expect(count).toBe(2_320_385);
    expect(lo.thetaShapes['rnn_params/rnn/~/linear/w']).toEqual([1024, 2048]);
    expect(lo.thetaShapes['ff_mod_stack/~/w0__3']).toEqual([256, 3, 4]);
    expect(createLearnedOptimizer('velo', SMALL).thetaShapes['rnn_params/rnn_to_controls/w']).toEqual([8, 4]);
  });

  it('refuses bad configs, a missing horizon, a horizon beyond 150k steps and a missing loss, naming what is allowed', () => {
    expect(() => velo({ lstmHiddenSize: 0 })).toThrow(/lstmHiddenSize.*integer in \[1, 4096\]/);
    expect(() => velo({ lstmHidden: 8 } as never)).toThrow(/unknown config key 'lstmHidden'/);
    const lo = velo(SMALL);
    const theta = lo.initTheta(1);
    const params = paramsFor(1);
    expect(() => lo.optimizer(theta).init(params)).toThrow(/totalSteps/);
    expect(() => lo.optimizer(theta, { totalSteps: 200_000 }).init(params)).toThrow(/150,000 steps.*accumulate gradients over 2 batches/);
    const opt = lo.optimizer(theta, { totalSteps: 100 });
    const state = opt.init(params);
    const grads = gradsFor(1, 0);
    expect(() => opt.update(grads, state, params)).toThrow(/training loss.*\{ loss \}/);
    expect(() => opt.update(grads, state, params, { loss: tf.tensor1d([1, 2]) })).toThrow(/loss has shape \[2\]; expected a scalar/);
    tf.dispose([...Object.values(theta), ...Object.values(params), ...Object.values(grads)]);
    disposeState(state.inner);
  });

  it('steps every kind of tensor (scalar, rank 5, tied dims, zeros) with finite updates that change with the loss', () => {
    const lo = velo(SMALL);
    const theta = lo.initTheta(3);
    let params = paramsFor(2);
    const opt = lo.optimizer(theta, { totalSteps: 50 });
    let state = opt.init(params);
    const before = tf.memory().numTensors;
    for (let t = 0; t < 6; t++) {
      const grads = gradsFor(2, t);
      const { updates, state: next } = opt.update(grads, state, params, { loss: 2 - 0.1 * t });
      for (const [name, u] of Object.entries(updates)) {
        expect(u.shape).toEqual(params[name]!.shape);
        expect(Array.from(u.dataSync()).every(Number.isFinite)).toBe(true);
      }
      const moved: Params = {};
      for (const [name, p] of Object.entries(params)) moved[name] = tf.add(p, updates[name]!);
      tf.dispose([...Object.values(params), ...Object.values(grads), ...Object.values(updates)]);
      disposeState(state.inner);
      params = moved;
      state = next;
    }
    // Memory: a steady loop frees everything a step made.
    expect(tf.memory().numTensors).toBe(before);
    // A different loss history gives a different step (the loss features are read).
    const grads = gradsFor(2, 99);
    const a = opt.update(grads, state, params, { loss: 0.5 });
    const b = opt.update(grads, state, params, { loss: 50 });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a.updates['w']!, b.updates['w']!))).dataSync()[0]!);
    expect(diff).toBeGreaterThan(0);
    tf.dispose([...Object.values(a.updates), ...Object.values(b.updates), ...Object.values(theta), ...Object.values(params), ...Object.values(grads)]);
    disposeState(a.state.inner);
    disposeState(b.state.inner);
    disposeState(state.inner);
  });

  it('ties break as a stable argsort: [4, 4] factors d1 = 0, d0 = 1', () => {
    expect(factoredDims([4, 4])).toEqual([0, 1]);
    expect(factoredDims([3, 3, 2, 4])).toEqual([1, 3]);
  });

  it('a population of P thetas steps P members exactly as P single optimizers (per-member counts, horizons and losses)', () => {
    const lo = velo(SMALL);
    const thetas = [lo.initTheta(10), lo.initTheta(11)];
    const horizons = [30, 70];
    const single = thetas.map((theta, k) => {
      const opt = lo.optimizer(theta, { totalSteps: horizons[k]! });
      let params = paramsFor(20 + k);
      let state = opt.init(params);
      const out: number[][] = [];
      for (let t = 0; t < 3; t++) {
        const grads = gradsFor(20 + k, t);
        const r = opt.step(params, grads, state, { loss: 1 + k + t });
        tf.dispose(Object.values(grads));
        params = r.params;
        state = r.state;
      }
      for (const p of Object.values(params)) out.push(Array.from(p.dataSync()));
      tf.dispose(Object.values(params));
      disposeState(state.inner);
      return out;
    });
    const stacked = stackThetas(thetas);
    const opt = lo.optimizer(stacked, { population: 2, memberSteps: true, totalSteps: 30 });
    const pair = [paramsFor(20), paramsFor(21)];
    let params: Params = {};
    for (const name of Object.keys(pair[0]!)) params[name] = tf.stack([pair[0]![name]!, pair[1]![name]!]);
    let state = opt.init(params);
    state = { ...state, inner: { ...(state.inner as object), horizon: horizons } as never };
    for (let t = 0; t < 3; t++) {
      const g = [gradsFor(20, t), gradsFor(21, t)];
      const grads: Params = {};
      for (const name of Object.keys(g[0]!)) grads[name] = tf.stack([g[0]![name]!, g[1]![name]!]);
      const loss = tf.tensor1d([1 + t, 2 + t]);
      const r = opt.step(params, grads, state, { loss });
      tf.dispose([loss, ...Object.values(grads), ...g.flatMap((x) => Object.values(x))]);
      params = r.params;
      state = r.state;
    }
    Object.values(params).forEach((p, i) => {
      const both = tf.unstack(p);
      both.forEach((member, k) => {
        const got = Array.from(member.dataSync());
        const want = single[k]![i]!;
        got.forEach((x, j) => expect(Math.abs(x - want[j]!)).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(want[j]!)));
      });
      tf.dispose(both);
    });
    tf.dispose([...Object.values(params), ...Object.values(stacked), ...pair.flatMap((x) => Object.values(x)), ...thetas.flatMap((x) => Object.values(x))]);
    disposeState(state.inner);
  });
});
