// VeLO's per-parameter step on the native fused kernel (src/lopt/velo/veloNative.ts, the kernel's
// 'velo' kind) against the tfjs-ops path (the reference, itself tested against a float64
// re-implementation of HyperV2 in veloExact.test.ts): updates and the whole state over several
// steps, P = 1 (no population axis) and P = 2 with desynchronized members; every kind of tensor,
// gradients beyond the ±1000 clip, infinite and NaN gradient members; threads do not change the bytes.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { kernelThreads, nativeKernelsStatus, setKernelThreads, useKernels } from '../src/kernels/native.js';
import { lastPerParamSeconds } from '../src/kernels/perParamStep.js';
import { stackThetas } from '../src/lopt/theta.js';
import type { LearnedOptimizer, LearnedOptimizerOptions } from '../src/lopt/types.js';
import { velo } from '../src/lopt/velo/velo.js';
import type { VeloConfig } from '../src/lopt/velo/config.js';
import type { OptimizerState } from '../src/optim/optimizer.js';
import { Rng } from '../src/random/rng.js';
import { disposeParams, type Params } from '../src/tree/params.js';
import { disposeReplaced, disposeState, stateLeafPaths, stateLeaves, type StateTree } from '../src/tree/stateTree.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  expect(nativeKernelsStatus()).toBeNull();
});

afterEach(() => {
  useKernels('native');
});

function onPath<T>(mode: 'native' | 'ops', fn: () => T): T {
  const prev = useKernels(mode);
  try {
    return fn();
  } finally {
    useKernels(prev);
  }
}

/** Every kind of tensor: conv kernel, matrix, bias, scalar, tied dims, rank 5, [1, n], zeros, and one of several kernel blocks. */
const SHAPES: Record<string, number[]> = {
  conv: [3, 3, 2, 4],
  dense: [6, 5],
  bias: [5],
  scalar: [],
  tied: [4, 4],
  rank5: [2, 3, 2, 2, 3],
  row: [1, 5],
  zeros: [3, 2],
  wide: [33, 70],
};

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** A theta at scales that make every part of the network matter (as veloExact.test.ts). */
function randomTheta(lo: LearnedOptimizer, seed: number): Params {
  const rng = Rng.from(seed);
  const theta: Params = {};
  for (const [name, shape] of Object.entries(lo.thetaShapes)) {
    const fanIn = shape.length >= 2 ? shape[shape.length - 2]! : 4;
    const bank = name.startsWith('ff_mod_stack/') ? 0.02 : 1;
    const scale = bank * (name.includes('lstm_init_state') ? 0.3 : name.endsWith('/b') || /\/b\d$/.test(name) ? 0.2 : 1.5 / Math.sqrt(fanIn));
    theta[name] = tf.tensor(
      Array.from({ length: size(shape.slice()) }, () => scale * rng.normal()),
      shape.slice(),
    );
  }
  return theta;
}

/** Parameters (P members, or none) at step `step`; 'zeros' is all zeros. */
function paramsAt(P: number | undefined, step: number): Params {
  const rng = Rng.from(3).fork(`p${step}`);
  const out: Params = {};
  for (const [name, s] of Object.entries(SHAPES)) {
    const shape = P === undefined ? s : [P, ...s];
    out[name] =
      name === 'zeros'
        ? tf.zeros(shape)
        : tf.tensor(
            Array.from({ length: size(shape) }, () => 0.5 * rng.normal()),
            shape,
          );
  }
  return out;
}

/** Gradients: 'dense' beyond the ±1000 clip in a third of its entries; 'zeros' all zeros. */
function gradsAt(P: number | undefined, step: number): Params {
  const rng = Rng.from(5).fork(`g${step}`);
  const out: Params = {};
  for (const [name, s] of Object.entries(SHAPES)) {
    const shape = P === undefined ? s : [P, ...s];
    const scale = 0.2 * (1 + step);
    out[name] =
      name === 'zeros'
        ? tf.zeros(shape)
        : tf.tensor(
            Array.from({ length: size(shape) }, (_, i) => (name === 'dense' && i % 3 === 0 ? 3000 * Math.sign(rng.normal()) : scale * rng.normal())),
            shape,
          );
  }
  return out;
}

/** Sets entries of a gradient (member-major flat indices) in place of the tensor. */
function poke(g: Params, name: string, entries: [number, number][]): void {
  const data = Float32Array.from(g[name]!.dataSync());
  for (const [i, v] of entries) data[i] = v;
  const next = tf.tensor(data, g[name]!.shape);
  g[name]!.dispose();
  g[name] = next;
}

function expectClose(actual: tf.Tensor, expected: tf.Tensor, what: string, rtol = 2e-4): void {
  expect(actual.shape, what).toEqual(expected.shape);
  const a = actual.dataSync();
  const e = expected.dataSync();
  let scale = 0;
  for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(e[i]!));
  for (let i = 0; i < e.length; i++) {
    const ok = Math.abs(a[i]! - e[i]!) <= rtol * Math.abs(e[i]!) + 1e-5 * scale + 1e-30;
    if (!ok) throw new Error(`${what}, element ${i}: native ${a[i]}, ops ${e[i]}`);
  }
}

/** Every leaf of the two states equal (tensors close, numbers exact), by path. */
function expectStatesClose(native: OptimizerState, ops: OptimizerState, what: string): void {
  const paths = stateLeafPaths(ops.inner);
  expect(stateLeafPaths(native.inner)).toEqual(paths);
  const a = stateLeaves(native.inner);
  const e = stateLeaves(ops.inner);
  paths.forEach((path, i) => {
    const x = a[i]!;
    const y = e[i]!;
    if (typeof y === 'number') expect(x, `${what} ${path}`).toBe(y);
    else expectClose(x as tf.Tensor, y, `${what} state '${path}'`);
  });
}

interface Run {
  mode: 'native' | 'ops';
  state: OptimizerState;
  warnings: string[];
}

/**
 * Both paths from the same start over `steps` steps on the same gradients and losses; updates and
 * the whole state compared at every step. Returns nothing; `check` sees each step's updates.
 */
function compareSteps(
  config: VeloConfig,
  P: number | undefined,
  steps: number,
  gradFor: (s: number) => Params = (s) => gradsAt(P, s),
  check?: (s: number, updates: Params[], states: OptimizerState[], before: OptimizerState[]) => void,
): void {
  const lo = velo(config);
  const theta = P === undefined ? randomTheta(lo, 7) : stackThetas(Array.from({ length: P }, (_, k) => randomTheta(lo, 7 + k)));
  const runs: Run[] = (['native', 'ops'] as const).map((mode) => ({ mode, state: undefined as unknown as OptimizerState, warnings: [] }));
  const opts = runs.map((r) => {
    const options: LearnedOptimizerOptions =
      P === undefined
        ? { totalSteps: 40, onWarning: (w) => r.warnings.push(`${w.parameter}@${w.step}`) }
        : { population: P, memberSteps: true, totalSteps: 40, onWarning: (w) => r.warnings.push(`${w.parameter}@${w.step}`) };
    return lo.optimizer(theta, options);
  });
  const params0 = paramsAt(P, 0);
  runs.forEach((r, i) => {
    let state = onPath(r.mode, () => opts[i]!.init(params0));
    if (P !== undefined) {
      // Desynchronized members with their own horizons: member k at step 7·k of a run of 30 + 40·k.
      const inner = state.inner as unknown as Record<string, StateTree>;
      state = {
        ...state,
        inner: {
          ...inner,
          count: Array.from({ length: P }, (_, k) => 7 * k),
          horizon: Array.from({ length: P }, (_, k) => 30 + 40 * k),
        } as unknown as StateTree,
      };
    }
    r.state = state;
  });
  disposeParams(params0);
  for (let s = 0; s < steps; s++) {
    const params = paramsAt(P, s);
    const grads = gradFor(s);
    const loss = P === undefined ? 2.5 - 0.2 * s : tf.tensor1d(Array.from({ length: P }, (_, k) => 2.5 - 0.2 * s + k));
    lastPerParamSeconds.fill(-1);
    const results = runs.map((r, i) => onPath(r.mode, () => opts[i]!.update(grads, r.state, params, { loss })));
    // The native run did run on the kernel.
    expect(lastPerParamSeconds[0], 'the native path ran the kernel').toBeGreaterThanOrEqual(0);
    for (const name of Object.keys(SHAPES)) expectClose(results[0]!.updates[name]!, results[1]!.updates[name]!, `step ${s} update '${name}'`);
    expectStatesClose(results[0]!.state, results[1]!.state, `step ${s}`);
    check?.(
      s,
      results.map((r) => r.updates),
      results.map((r) => r.state),
      runs.map((r) => r.state),
    );
    runs.forEach((r, i) => {
      // (With useBuggedNextLstmState the new state holds the old LSTM state.)
      disposeReplaced(r.state.inner, results[i]!.state.inner);
      disposeParams(results[i]!.updates);
      r.state = results[i]!.state;
    });
    disposeParams(grads);
    disposeParams(params);
    if (typeof loss !== 'number') loss.dispose();
  }
  expect(runs[0]!.warnings).toEqual(runs[1]!.warnings);
  runs.forEach((r) => disposeState(r.state.inner));
  disposeParams(theta);
}

describe('VeLO on the native kernel equals the tfjs-ops path', () => {
  it('P = 1 (no population axis), every kind of tensor, 5 steps', () => {
    compareSteps({ lstmHiddenSize: 8, paramInits: 4 }, undefined, 5, undefined, (s, updates) => {
      // Not vacuous: the steps move every tensor but the all-zero one by a visible amount.
      for (const name of Object.keys(SHAPES)) {
        const max = tf.tidy(() => tf.max(tf.abs(updates[0]![name]!)).dataSync()[0]!);
        if (name !== 'zeros') expect(max, `step ${s} '${name}'`).toBeGreaterThan(1e-6);
      }
    });
  });

  it('P = 2 with desynchronized members and horizons, MLP width 5, both bugged flags, 4 steps', () => {
    compareSteps({ lstmHiddenSize: 16, paramInits: 6, ffHiddenSize: 5, useBuggedLossFeatures: true, useBuggedNextLstmState: true }, 2, 4);
  });

  it('P = 2 at the released sizes (LSTM 512, 256 banks), 3 steps', () => {
    compareSteps({}, 2, 3);
  });

  it('a NaN gradient of one member and tensor: zero update, accumulators kept, a warning; an infinite one is clipped', () => {
    const P = 2;
    compareSteps(
      { lstmHiddenSize: 8, paramInits: 4 },
      P,
      3,
      (s) => {
        const g = gradsAt(P, s);
        if (s === 1) {
          // conv member 1 holds one NaN; dense member 0 an infinity (clipped to 1000: a finite step).
          poke(g, 'conv', [[size(SHAPES['conv']!) + 17, Number.NaN]]);
          poke(g, 'dense', [[4, Number.POSITIVE_INFINITY]]);
          poke(g, 'scalar', [[1, Number.NEGATIVE_INFINITY]]);
        }
        return g;
      },
      (s, updates, states, before) => {
        if (s !== 1) return;
        const n = size(SHAPES['conv']!);
        updates.forEach((u, path) => {
          const conv = u['conv']!.dataSync();
          expect(
            Array.from(conv.subarray(n)).every((v) => v === 0),
            `path ${path}: member 1's conv update is zero`,
          ).toBe(true);
          expect(Array.from(conv.subarray(0, n)).some((v) => v !== 0)).toBe(true);
          expect(Array.from(u['dense']!.dataSync()).every(Number.isFinite)).toBe(true);
          expect(u['scalar']!.dataSync()[1]).not.toBe(0);
          const acc = (st: OptimizerState) => (st.inner as unknown as { acc: Record<string, Record<string, tf.Tensor>> }).acc['conv']!;
          for (const key of Object.keys(acc(before[path]!))) {
            const old = acc(before[path]!)[key]!.dataSync();
            const now = acc(states[path]!)[key]!.dataSync();
            const per = old.length / P;
            expect(Array.from(now.subarray(per)), `path ${path}: member 1's conv '${key}' kept`).toEqual(Array.from(old.subarray(per)));
            expect(Array.from(now.subarray(0, per))).not.toEqual(Array.from(old.subarray(0, per)));
          }
        });
      },
    );
  });

  it('the NaN member is reported through onWarning on both paths (P = 1)', () => {
    const warnings: Record<string, string[]> = {};
    for (const mode of ['native', 'ops'] as const) {
      const lo = velo({ lstmHiddenSize: 8, paramInits: 4 });
      const theta = randomTheta(lo, 2);
      const seen: string[] = [];
      const opt = lo.optimizer(theta, { totalSteps: 10, onWarning: (w) => seen.push(`${w.kind} ${w.parameter} @${w.step}`) });
      const params = paramsAt(undefined, 0);
      const grads = gradsAt(undefined, 0);
      poke(grads, 'bias', [[2, Number.NaN]]);
      const state = onPath(mode, () => opt.init(params));
      const r = onPath(mode, () => opt.update(grads, state, params, { loss: 1 }));
      expect(Array.from(r.updates['bias']!.dataSync())).toEqual([0, 0, 0, 0, 0]);
      warnings[mode] = seen;
      disposeState(state.inner);
      disposeState(r.state.inner);
      disposeParams(r.updates);
      disposeParams(grads);
      disposeParams(params);
      disposeParams(theta);
    }
    expect(warnings['native']).toEqual(['non-finite-gradient bias @0']);
    expect(warnings['ops']).toEqual(warnings['native']);
  });

  it('gives bit-identical updates and state with 1 and 2 threads', () => {
    const lo = velo({ lstmHiddenSize: 8, paramInits: 4 });
    const P = 2;
    const theta = stackThetas([randomTheta(lo, 30), randomTheta(lo, 31)]);
    const params = paramsAt(P, 1);
    const before = kernelThreads();
    const run = (threads: number) => {
      setKernelThreads(threads);
      const opt = lo.optimizer(theta, { population: P, totalSteps: 20 });
      let state = opt.init(params);
      const out: number[][] = [];
      for (let s = 0; s < 2; s++) {
        const grads = gradsAt(P, s);
        const r = opt.update(grads, state, params, { loss: tf.tensor1d([2 - s, 3 - s]) });
        for (const name of Object.keys(SHAPES)) out.push(Array.from(r.updates[name]!.dataSync()));
        for (const leaf of stateLeaves(r.state.inner)) out.push(typeof leaf === 'number' ? [leaf] : Array.from(leaf.dataSync()));
        disposeState(state.inner);
        disposeParams(r.updates);
        disposeParams(grads);
        state = r.state;
      }
      disposeState(state.inner);
      return out;
    };
    try {
      expect(run(2)).toEqual(run(1));
    } finally {
      setKernelThreads(before);
    }
    disposeParams(params);
    disposeParams(theta);
  });

  it('frees every tensor a step makes', () => {
    const lo = velo({ lstmHiddenSize: 8, paramInits: 4 });
    const theta = randomTheta(lo, 40);
    const opt = lo.optimizer(theta, { totalSteps: 20 });
    const params = paramsAt(undefined, 0);
    const grads = gradsAt(undefined, 0);
    let state = opt.init(params);
    const step = () => {
      const r = opt.update(grads, state, params, { loss: 1 });
      disposeState(state.inner);
      disposeParams(r.updates);
      state = r.state;
    };
    step();
    const count = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(count);
    disposeState(state.inner);
    disposeParams(grads);
    disposeParams(params);
    disposeParams(theta);
  });
});
