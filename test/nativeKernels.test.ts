// The native kernels (src/kernels/) against their tfjs-ops twins: the fused learned-optimizer step
// (μLO and MLPLOpt; P = 1 and P > 1; every tensor rank; per-member step counts and restarts; the
// NaN/Inf policy), the image-MLP task's loss and gradients, and the GEMM the bench times. The
// tfjs-ops path is itself tested against float64 re-implementations of the references
// (learnedOptimizer.test.ts runs those golden tests on both paths).
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { kernelThreads, nativeKernels, nativeKernelsStatus, setKernelThreads, useKernels } from '../src/kernels/native.js';
import { mlpLopt } from '../src/lopt/mlpLopt.js';
import { smallFcLopt } from '../src/lopt/smallFcLopt.js';
import { stackThetas } from '../src/lopt/theta.js';
import type { LearnedOptimizer } from '../src/lopt/types.js';
import type { OptimizerState } from '../src/optim/optimizer.js';
import { selectMembers } from '../src/tree/memberSelect.js';
import { disposeParams, type Params } from '../src/tree/params.js';
import { disposeState, type StateTree } from '../src/tree/stateTree.js';
import { lossAndGrads } from '../tasks/lossAndGrads.js';
import { mlpTask, parseMlpName } from '../tasks/mlp.js';
import type { Task } from '../tasks/types.js';
import { uniformValues } from './helpers/values.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  // The fast path is a deliverable: the kernels must be built here (npm install; CI installs gcc).
  expect(nativeKernelsStatus()).toBeNull();
});

afterEach(() => {
  useKernels('native');
});

/** Runs `fn` on one path and returns what it returns. */
function onPath<T>(mode: 'native' | 'ops', fn: () => T): T {
  const prev = useKernels(mode);
  try {
    return fn();
  } finally {
    useKernels(prev);
  }
}

function values(shape: number[], seed: number, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Array.from(uniformValues(n, seed), (v) => v * scale),
    shape,
    'float32',
  );
}

/** Theta with every tensor drawn from seeded values (biases and decay offsets included). */
function randomTheta(lo: LearnedOptimizer, seed: number): Params {
  const theta: Params = {};
  let i = 0;
  for (const [name, shape] of Object.entries(lo.thetaShapes)) {
    theta[name] = values(shape.slice(), seed * 100 + i++, name.startsWith('decay/') ? 0.05 : 0.5);
  }
  return theta;
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

function stateTensors(state: OptimizerState): Record<string, tf.Tensor> {
  const acc = (state.inner as { acc: Record<string, Record<string, tf.Tensor>> }).acc;
  const out: Record<string, tf.Tensor> = {};
  for (const [name, a] of Object.entries(acc)) for (const [k, t] of Object.entries(a)) out[`${name}.${k}`] = t;
  return out;
}

// Every rank: a scalar, a bias, a matrix with tied dims, a conv kernel, a rank-5 tensor, and a
// matrix whose smaller dim is 1 (d0 = 1 factoring).
const SHAPES: Record<string, number[]> = {
  scalar: [],
  bias: [7],
  tied: [5, 5],
  wide: [3, 70],
  column: [9, 1],
  conv: [3, 3, 2, 4],
  rank5: [2, 3, 2, 2, 3],
};

function memberParams(P: number | undefined, seed: number, scale: number): Params {
  const out: Params = {};
  Object.entries(SHAPES).forEach(([name, s], j) => {
    out[name] = values(P === undefined ? s : [P, ...s], seed * 37 + j, scale);
  });
  return out;
}

/**
 * Both paths from the same start over `steps` steps, each carrying its own state, on the same
 * gradients; updates and accumulators compared at every step. `restartAt`: that step restarts
 * member 1 (fresh accumulators, count 0) on both paths, as a truncation unit does.
 */
const mupScale = (name: string) => (name === 'tied' ? 0.2 : 1);

function compareSteps(lo: LearnedOptimizer, P: number | undefined, steps: number, restartAt?: number, gradFor?: (s: number) => Params): void {
  const theta = P === undefined ? randomTheta(lo, 3) : stackThetas(Array.from({ length: P }, (_, k) => randomTheta(lo, 3 + k)));
  const options = P === undefined ? { mupScale, totalSteps: 20 } : { population: P, memberSteps: true, mupScale, totalSteps: 20 };
  const params = memberParams(P, 1, 1);
  const runs = (['native', 'ops'] as const).map((mode) => {
    const opt = lo.optimizer(theta, options);
    let state = onPath(mode, () => opt.init(params));
    if (P !== undefined) {
      // Desynchronized members: member k starts at step 7·k.
      state = { ...state, inner: { ...(state.inner as object), count: Array.from({ length: P }, (_, k) => 7 * k) } as unknown as StateTree };
    }
    return { mode, opt, state };
  });
  for (let s = 0; s < steps; s++) {
    const grads = gradFor?.(s) ?? memberParams(P, 100 + s, 0.3 * (s + 1));
    const results = runs.map((r) => onPath(r.mode, () => r.opt.update(grads, r.state, params)));
    for (const name of Object.keys(SHAPES)) expectClose(results[0]!.updates[name]!, results[1]!.updates[name]!, `step ${s} update '${name}'`);
    const [na, op] = results.map((r) => stateTensors(r.state));
    for (const key of Object.keys(op!)) expectClose(na![key]!, op![key]!, `step ${s} accumulator '${key}'`);
    expect((results[0]!.state.inner as { count: unknown }).count).toEqual((results[1]!.state.inner as { count: unknown }).count);
    runs.forEach((r, i) => {
      disposeState(r.state.inner);
      disposeParams(results[i]!.updates);
      r.state = results[i]!.state;
      if (P !== undefined && restartAt === s) {
        const take = Array.from({ length: P }, (_, k) => k === 1);
        const fresh = onPath(r.mode, () => r.opt.init(params));
        const inner = r.state.inner as unknown as { count: number[]; acc: StateTree };
        const acc = selectMembers(inner.acc, (fresh.inner as unknown as { acc: StateTree }).acc, take);
        disposeState(inner.acc);
        disposeState(fresh.inner);
        r.state = { ...r.state, inner: { ...inner, count: inner.count.map((c, k) => (take[k] ? 0 : c)), acc } as unknown as StateTree };
      }
    });
    disposeParams(grads);
  }
  runs.forEach((r) => disposeState(r.state.inner));
  disposeParams(params);
  disposeParams(theta);
}

describe('the fused per-parameter step equals the tfjs-ops path', () => {
  for (const make of [
    () => smallFcLopt({ hiddenSize: 32 }),
    () => mlpLopt({ hiddenSize: 32 }),
    () => smallFcLopt({ hiddenSize: 5 }),
    () => smallFcLopt({ fractionFeatures: true }),
  ]) {
    const lo = make();
    const label = `${lo.arch} (hidden ${lo.thetaShapes['mlp/w1']![0]}${lo.config['fractionFeatures'] ? ', fraction features' : ''})`;
    it(`${label}, P = 1 (no population axis), every rank, 4 steps`, () => compareSteps(lo, undefined, 4));
    it(`${label}, P = 3 with desynchronized step counts and a restart of member 1`, () => compareSteps(lo, 3, 4, 1));
  }

  it('μLO: a non-finite gradient of one member and tensor gives a zero update and keeps its accumulators, on both paths', () => {
    const lo = smallFcLopt();
    const P = 3;
    compareSteps(lo, P, 3, undefined, (s) => {
      const g = memberParams(P, 200 + s, 0.5);
      if (s === 1) {
        const bad = g['conv']!.bufferSync();
        bad.set(Number.NaN, 2, 1, 1, 0, 3);
        const next = bad.toTensor();
        g['conv']!.dispose();
        g['conv'] = next;
        const inf = g['bias']!.bufferSync();
        inf.set(Number.POSITIVE_INFINITY, 0, 4);
        g['bias']!.dispose();
        g['bias'] = inf.toTensor();
      }
      return g;
    });
    // And the update itself is exactly zero for that member and tensor, others not.
    const theta = stackThetas([0, 1, 2].map((k) => randomTheta(lo, 9 + k)));
    const opt = lo.optimizer(theta, { population: P });
    const params = memberParams(P, 2, 1);
    const state = opt.init(params);
    const g = memberParams(P, 300, 0.5);
    const buf = g['tied']!.bufferSync();
    buf.set(Number.NaN, 1, 0, 0);
    g['tied']!.dispose();
    g['tied'] = buf.toTensor();
    const warnings: string[] = [];
    const warned = lo.optimizer(theta, { population: P, onWarning: (w) => warnings.push(w.parameter) });
    const r = warned.update(g, state, params);
    const u = r.updates['tied']!.arraySync() as number[][][];
    expect(u[1]!.flat().every((v) => v === 0)).toBe(true);
    expect(u[0]!.flat().some((v) => v !== 0)).toBe(true);
    expect(warnings).toEqual(['tied[member 1]']);
    const m = (r.state.inner as unknown as { acc: Record<string, Record<string, tf.Tensor>> }).acc['tied']!['m']!.arraySync() as number[][][];
    expect(m[1]!.flat().every((v) => v === 0)).toBe(true);
    void opt;
  });

  it('gives bit-identical results with 1 and 2 threads', () => {
    const lo = smallFcLopt();
    const P = 4;
    const theta = stackThetas(Array.from({ length: P }, (_, k) => randomTheta(lo, 20 + k)));
    const params = memberParams(P, 5, 1);
    const grads = memberParams(P, 6, 0.2);
    const before = kernelThreads();
    const run = (threads: number) => {
      setKernelThreads(threads);
      const opt = lo.optimizer(theta, { population: P });
      const state = opt.init(params);
      const r = opt.update(grads, state, params);
      const out = Object.keys(SHAPES).map((n) => Array.from(r.updates[n]!.dataSync()));
      disposeState(state.inner);
      disposeState(r.state.inner);
      disposeParams(r.updates);
      return out;
    };
    try {
      expect(run(2)).toEqual(run(1));
    } finally {
      setKernelThreads(before);
    }
  });

  it('the kernel refuses arrays of the wrong length instead of reading past them', () => {
    const native = nativeKernels()!;
    expect(() => native.perParamStep(new Float64Array(12), [])).toThrow(/inconsistent header|wrong length/);
    // A channel count that is not the kind's (μLO builds 28, VeLO 30): refused, not written past the feature block.
    expect(() => native.perParamStep(new Float64Array([2, 1, 0, 3, 3, 28, 4, 1, 0.01, 0.001, 0, 1000]), [])).toThrow(/inconsistent header/);
    expect(() => native.perParamStep(new Float64Array([0, 1, 0, 40, 0, 64, 4, 1, 0.01, 0.001, 0, 0]), [])).toThrow(/inconsistent header/);
    const header = new Float64Array([1, 1, 0, 3, 3, 28, 4, 1, 0.01, 0.001, 11, 0]);
    const arrays = [new Float32Array(39 * 4), new Float32Array(4), new Float32Array(16), new Float32Array(4), new Float32Array(8), new Float32Array(1)];
    expect(() => native.perParamStep(header, arrays)).toThrow(/arrays has the wrong length/);
    expect(() => native.sgemm(new Float32Array(5), new Float32Array(6), new Float32Array(6), 2, 3, 2, 1)).toThrow(/Float32Arrays of M·K/);
  });
});

describe('the image-MLP task on the native kernel equals tf.valueAndGrads of its loss', () => {
  const cases: [string, number][] = [
    ['mlp-mnist8-w32-d1-relu-b16-mup', 3],
    ['mlp-mnist8-w20-d3-tanh-b9-sp', 2],
    ['mlp-mnist8-w48-d2-gelu-b8-mup', 1],
    ['mlp-mnist16-w33-d2-relu-b5-sp', 2],
  ];
  for (const [name, P] of cases) {
    it(`${name}, P = ${P}`, () => {
      const task: Task = mlpTask(parseMlpName(name));
      const seeds = Array.from({ length: P }, (_, k) => k + 1);
      const params = task.init(seeds);
      // Non-zero readout so that every gradient is exercised (μP initializes it to zero).
      for (const key of ['readout/kernel', 'readout/bias']) {
        const shape = params[key]!.shape;
        params[key]!.dispose();
        params[key] = values(shape, 77, 0.5);
      }
      const batch = task.batches('train', seeds).next();
      const native = onPath('native', () => lossAndGrads(task, params, batch));
      const ops = onPath('ops', () => lossAndGrads(task, params, batch));
      expectClose(native.losses, ops.losses, 'loss', 1e-5);
      for (const key of Object.keys(params)) expectClose(native.grads[key]!, ops.grads[key]!, `gradient '${key}'`, 1e-4);
      tf.dispose([native.losses, ops.losses, ...Object.values(native.grads), ...Object.values(ops.grads), ...Object.values(batch)]);
      disposeParams(params);
    });
  }

  it('no tensor growth over 300 fused steps', () => {
    const task = mlpTask(parseMlpName('mlp-mnist8-w16-d2-relu-b8-mup'));
    const params = task.init([1, 2]);
    const batch = task.batches('train', [1, 2]).next();
    const step = () => {
      const r = lossAndGrads(task, params, batch);
      tf.dispose([r.losses, ...Object.values(r.grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 300; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(batch));
    disposeParams(params);
  });
});

describe('the GEMM the bench times', () => {
  it('equals a float64 product', () => {
    const [M, N, K] = [37, 90, 21];
    const a = uniformValues(M * K, 1);
    const b = uniformValues(K * N, 2);
    const c = new Float32Array(M * N);
    nativeKernels()!.sgemm(a, b, c, M, N, K, 2);
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[m * K + k]! * b[k * N + n]!;
        expect(Math.abs(c[m * N + n]! - s)).toBeLessThan(1e-5 * K);
      }
  });
});

describe('kernel settings from the environment', () => {
  const cli = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['dist/src/cli/lopt.js', 'demo'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

  it('bad LOPT_KERNELS / LOPT_THREADS stop the command with a message naming what is allowed', () => {
    const kernels = cli({ LOPT_KERNELS: 'fast' });
    expect(kernels.status).not.toBe(0);
    expect(kernels.stderr).toContain(`LOPT_KERNELS must be 'native' or 'ops'; got "fast"`);
    const threads = cli({ LOPT_THREADS: '0' });
    expect(threads.status).not.toBe(0);
    expect(threads.stderr).toContain('LOPT_THREADS must be an integer in [1, 256]; got "0"');
  });

  it('the backend line says which path runs', () => {
    expect(cli({ LOPT_THREADS: '1' }).stderr).toContain('native kernels on (1 thread)');
    expect(cli({ LOPT_KERNELS: 'ops' }).stderr).toContain('native kernels off (LOPT_KERNELS=ops): tfjs-ops path');
  });
});
