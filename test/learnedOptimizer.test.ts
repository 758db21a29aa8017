import * as tf from '@tensorflow/tfjs-core';
import { asTfjsOptimizer } from '../src/tfjs/adapter.js';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { factoredDims, fractionFeatures, initAccumulators, normalizedFeatures, tensorFeatures, timeFeatures } from '../src/lopt/features.js';
import { MLP_LOPT_FEATURES, mlpLopt } from '../src/lopt/mlpLopt.js';
import { createLearnedOptimizer, LEARNED_OPTIMIZERS } from '../src/lopt/registry.js';
import { metaDecays, SMALL_FC_FEATURES, smallFcLopt } from '../src/lopt/smallFcLopt.js';
import { stackThetas } from '../src/lopt/theta.js';
import type { LearnedOptimizer } from '../src/lopt/types.js';
import type { OptimizerState } from '../src/optim/optimizer.js';
import { Rng } from '../src/random/rng.js';
import { disposeParams, parameterCount, type Params } from '../src/tree/params.js';
import { disposeReplaced } from '../src/tree/stateTree.js';
import { initBackend } from '../src/backend/select.js';
import { nativeKernelsStatus, useKernels } from '../src/kernels/native.js';

beforeAll(async () => {
  // As users run it: wasm with the fast matMul path and the fallbacks installed.
  await initBackend({ backend: 'wasm', log: () => {} });
});

const thetaCount = (lo: LearnedOptimizer) => Object.values(lo.thetaShapes).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);

const arr = (t: tf.Tensor) => Array.from(t.dataSync());

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 2e-5, atol = 1e-6) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`element ${i}: got ${a}, expected ${e}`);
    }
  }
}

/** A theta with its last layer outputting the constant (1, 0). */
function constantOutputTheta(lo: LearnedOptimizer, seed: number): Params {
  const theta = lo.initTheta(seed);
  theta['mlp/w2']!.dispose();
  theta['mlp/b2']!.dispose();
  theta['mlp/w2'] = tf.zeros(lo.thetaShapes['mlp/w2']!.slice());
  theta['mlp/b2'] = tf.tensor1d([1, 0]);
  return theta;
}

/** Theta with every tensor drawn from a seeded normal (biases and decay offsets included). */
function randomTheta(lo: LearnedOptimizer, seed: number, decayOffsets?: Record<string, number[]>): Params {
  const rng = Rng.from(seed);
  const theta: Params = {};
  for (const [name, shape] of Object.entries(lo.thetaShapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const given = decayOffsets?.[name];
    const values = given ?? Array.from({ length: n }, () => (name.startsWith('decay/') ? 0.05 : 0.5) * rng.normal());
    theta[name] = tf.tensor(values, shape.slice());
  }
  return theta;
}

// Every test below runs on both paths: the native fused kernel (src/kernels/) and the tfjs-ops
// reference. The native kernel must be built (npm install builds it; CI installs gcc).
describe.each(['native', 'ops'] as const)('%s path', (mode) => {
  beforeAll(() => {
    useKernels(mode);
    if (mode === 'native') expect(nativeKernelsStatus()).toBeNull();
  });

  describe('learned optimizer shapes', () => {
    it('feature and theta counts', () => {
      expect(SMALL_FC_FEATURES).toBe(39);
      expect(MLP_LOPT_FEATURES).toBe(19);
      expect(thetaCount(smallFcLopt())).toBe(2409);
      expect(thetaCount(smallFcLopt({ hiddenSize: 4 }))).toBe(197);
      expect(thetaCount(mlpLopt())).toBe(1762);
      const theta = smallFcLopt().initTheta(0);
      expect(parameterCount(theta)).toBe(2409);
      expect(Object.keys(theta)).toEqual(['mlp/w0', 'mlp/b0', 'mlp/w1', 'mlp/b1', 'mlp/w2', 'mlp/b2', 'decay/momentum', 'decay/rms', 'decay/adafactor']);
      disposeParams(theta);
    });

    it('init: truncated normal 1/sqrt(fan_in) within 2 sigma, biases and offsets 0, seeded', () => {
      const lo = smallFcLopt();
      const a = lo.initTheta(3);
      const b = lo.initTheta(3);
      const w0 = arr(a['mlp/w0']!);
      const std = 1 / Math.sqrt(39);
      expect(Math.max(...w0.map(Math.abs))).toBeLessThanOrEqual(2 * std + 1e-7);
      const rms = Math.sqrt(w0.reduce((s, x) => s + x * x, 0) / w0.length);
      expect(rms).toBeGreaterThan(0.8 * std);
      expect(rms).toBeLessThan(0.98 * std); // truncation at 2σ, not rescaled: ≈ 0.88σ
      expect(arr(a['mlp/b0']!).every((x) => x === 0)).toBe(true);
      expect(arr(a['decay/rms']!)).toEqual([0]);
      expect(arr(a['mlp/w1']!)).toEqual(arr(b['mlp/w1']!));
      disposeParams(a);
      disposeParams(b);
    });

    it('registry rebuilds from (arch, config) and rejects unknown ones', () => {
      const lo = createLearnedOptimizer('small_fc_lopt', { hiddenSize: 4, mup: false });
      expect(lo.config).toEqual({ hiddenSize: 4, mup: false, stepMult: 0.001, expMult: 0.001 });
      expect(thetaCount(createLearnedOptimizer(lo.arch, { ...lo.config }))).toBe(197);
      expect(Object.keys(LEARNED_OPTIMIZERS)).toEqual(['small_fc_lopt', 'mlp_lopt', 'learnable_sgd', 'velo']);
      expect(() => createLearnedOptimizer('hyper_lstm', {})).toThrow(
        /unknown learned optimizer architecture 'hyper_lstm'; allowed: small_fc_lopt, mlp_lopt, learnable_sgd, velo/,
      );
      expect(() => createLearnedOptimizer('mlp_lopt', { hidden: 3 })).toThrow(/unknown config key 'hidden'/);
      expect(() => createLearnedOptimizer('mlp_lopt', { hiddenSize: 'x' })).toThrow(/hiddenSize/);
      const theta = mlpLopt().initTheta(1);
      expect(() => smallFcLopt().optimizer(theta)).toThrow(/'mlp\/w0' has shape \[19,32\], expected \[39,32\]/);
      expect(() => mlpLopt().optimizer(theta, { population: 2 })).toThrow(/expected \[2,19,32\]/);
      expect(() => mlpLopt().optimizer(theta).toConfig()).toThrow(/serialized through its checkpoint/);
      disposeParams(theta);
    });
  });

  describe('features', () => {
    it('time features at t = 0 and t = 100', () => {
      expectClose(timeFeatures(0), new Array(11).fill(-0.761594), 0, 5e-7);
      const want = [1, 1, 1, 0.9814, 0, -0.5828, -0.7163, -0.7472, -0.7574, -0.7602, -0.7612];
      timeFeatures(100).forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 4));
    });

    it('decay offsets 0 reproduce the base decays; offsets move them as 1 − (1 − β₀)·exp(10θ), clipped where the reference clips', () => {
      tf.tidy(() => {
        expectClose(arr(metaDecays(tf.zeros([1, 3]), [0.9, 0.99, 0.999], false)), [0.9, 0.99, 0.999], 1e-7);
        const unclipped = arr(metaDecays(tf.tensor2d([[0.3]]), [0.9], false));
        expectClose(unclipped, [1 - 0.1 * Math.exp(3)], 1e-6);
        expect(arr(metaDecays(tf.tensor2d([[0.3]]), [0.9], true))).toEqual([0]);
      });
    });

    it('factored dims: stable argsort of the shape', () => {
      expect(factoredDims([5])).toBeNull();
      expect(factoredDims([])).toBeNull();
      expect(factoredDims([4, 4])).toEqual([0, 1]);
      expect(factoredDims([2, 3])).toEqual([0, 1]);
      expect(factoredDims([3, 2])).toEqual([1, 0]);
      expect(factoredDims([3, 5, 5])).toEqual([1, 2]);
      expect(factoredDims([5, 3, 5])).toEqual([0, 2]);
      expect(factoredDims([3, 3, 4, 8])).toEqual([2, 3]);
      expect(factoredDims([3, 3, 1, 1])).toEqual([0, 1]);
    });

    it('normalized channels have mean(x²) = ms/(ms + 1e-5); an all-zero channel stays 0', () => {
      tf.tidy(() => {
        const decays = {
          momentum: tf.tensor2d([[0.9, 0.99, 0.999]]),
          rms: tf.tensor2d([[0.999]]),
          adafactor: tf.tensor2d([[0.9, 0.99, 0.999]]),
        };
        const g = tf.randomNormal([1, 6, 5], 0, 1e-3, 'float32', 7);
        const p = tf.zeros([1, 6, 5]); // the p channel is all zero
        const acc = initAccumulators('adafactor', 3, 3, [1, 6, 5]);
        const f = tensorFeatures('adafactor', g, p, acc, decays);
        expect(f.raw.shape).toEqual([1, 28, 30]);
        const x = normalizedFeatures(f);
        const raw = f.raw.arraySync()[0]!;
        const norm = x.arraySync()[0]!;
        for (let c = 0; c < 28; c++) {
          const ms = raw[c]!.reduce((s, v) => s + v * v, 0) / 30;
          const got = norm[c]!.reduce((s, v) => s + v * v, 0) / 30;
          expect(got).toBeCloseTo(ms / (ms + 1e-5), 5);
        }
        expect(norm[1]!.every((v) => v === 0)).toBe(true);
      });
    });

    it('a rank-3 (conv) tensor takes the factored branch over the stable-argsort dims', () => {
      tf.tidy(() => {
        const decays = {
          momentum: tf.tensor2d([[0.9, 0.99, 0.999]]),
          rms: tf.tensor2d([[0.999]]),
          adafactor: tf.tensor2d([[0.5, 0.9, 0.99]]),
        };
        const shape = [3, 5, 5]; // d1 = 1, d0 = 2 (a stable sort keeps dim 1 before dim 2)
        const g = tf.randomNormal([1, ...shape], 0, 1, 'float32', 3);
        const acc = initAccumulators('adafactor', 3, 3, [1, ...shape]);
        expect(acc['row']!.shape).toEqual([1, 3, 3, 5, 1]);
        expect(acc['col']!.shape).toEqual([1, 3, 3, 1, 5]);
        expect(acc['full']).toBeUndefined();
        const f = tensorFeatures('adafactor', g, tf.onesLike(g), acc, decays);
        const g2 = tf.add(tf.square(g), 1e-30);
        expectClose(arr(tf.slice(f.acc['row']!, [0, 0], [1, 1])), arr(tf.mul(tf.mean(g2, 3), 0.5)), 1e-5);
        expectClose(arr(tf.slice(f.acc['col']!, [0, 2], [1, 1])), arr(tf.mul(tf.mean(g2, 2), 0.01)), 1e-5);
        // A vector takes the full-accumulator branch; a scalar is handled as [1].
        expect(Object.keys(initAccumulators('adafactor', 3, 3, [1, 7]))).toEqual(['m', 'v', 'full']);
        expect(initAccumulators('adafactor', 3, 3, [1]).full!.shape).toEqual([1, 3, 1]);
      });
    });
  });

  // ---------------------------------------------------------------------------------------------
  // An independent float64 re-implementation of μLO from DESIGN.md's formulas (rank ≤ 2 tensors).

  type Mat = number[][];
  interface RefTensor {
    shape: number[];
    p: number[];
    m: Mat; // [3][n]
    v: number[];
    row?: Mat; // [3][shape[d1]]  (mean over d0)
    col?: Mat; // [3][shape[d0]]  (mean over d1)
    full?: Mat; // [3][n]
  }

  const rsqrt = (x: number) => 1 / Math.sqrt(x);

  function refStep(
    t: RefTensor,
    g: number[],
    step: number,
    th: Record<string, number[]>,
    hidden: number,
    stepMult: number,
    mup: number,
  ): { features: Mat; update: number[] } {
    const n = g.length;
    const mom = th['decay/momentum']!.map((o, k) => 1 - (1 - [0.9, 0.99, 0.999][k]!) * Math.exp(10 * o));
    const clip = (b: number) => Math.min(1, Math.max(0, b));
    const rmsB = clip(1 - (1 - 0.999) * Math.exp(10 * th['decay/rms']![0]!));
    const fac = th['decay/adafactor']!.map((o, k) => clip(1 - (1 - [0.9, 0.99, 0.999][k]!) * Math.exp(10 * o)));
    for (let k = 0; k < 3; k++) for (let i = 0; i < n; i++) t.m[k]![i] = mom[k]! * t.m[k]![i]! + (1 - mom[k]!) * g[i]!;
    for (let i = 0; i < n; i++) t.v[i] = rmsB * t.v[i]! + (1 - rmsB) * g[i]! * g[i]!;
    const gsq = g.map((x) => x * x + 1e-30);
    const ch: Mat = [];
    ch.push(g.slice(), t.p.slice(), ...t.m.map((r) => r.slice()), t.v.slice());
    for (let k = 0; k < 3; k++) ch.push(t.m[k]!.map((x, i) => x * rsqrt(t.v[i]! + 1e-6)));
    ch.push(t.v.map((x) => rsqrt(x + 1e-6)));
    const facG: Mat = [],
      rowF: Mat = [],
      colF: Mat = [],
      rsRow: Mat = [],
      rsCol: Mat = [],
      facMom: Mat = [];
    if (t.shape.length === 2) {
      // Stable argsort of the shape: [d1, d0] with d0 the largest dim.
      const [a, b] = t.shape as [number, number];
      const d0 = b >= a ? 1 : 0;
      const idx = (i: number) => [Math.floor(i / b), i % b] as const;
      for (let k = 0; k < 3; k++) {
        // row: mean over d0 (indexed by the other dim); col: mean over d1 (indexed by d0).
        const rowLen = d0 === 1 ? a : b;
        const colLen = d0 === 1 ? b : a;
        const rowMean = new Array(rowLen).fill(0);
        const colMean = new Array(colLen).fill(0);
        for (let i = 0; i < n; i++) {
          const [r, c] = idx(i);
          const keyRow = d0 === 1 ? r : c;
          const keyCol = d0 === 1 ? c : r;
          rowMean[keyRow] += gsq[i]! / colLen;
          colMean[keyCol] += gsq[i]! / rowLen;
        }
        t.row![k] = t.row![k]!.map((x, j) => fac[k]! * x + (1 - fac[k]!) * rowMean[j]);
        t.col![k] = t.col![k]!.map((x, j) => fac[k]! * x + (1 - fac[k]!) * colMean[j]);
        const rm = t.row![k]!.reduce((s, x) => s + x, 0) / rowLen;
        const rowFactor = t.row![k]!.map((x) => rsqrt(Math.max(x / (rm + 1e-9), 1e-9)));
        const colFactor = t.col![k]!.map((x) => rsqrt(Math.max(x, 1e-9)));
        const at = (i: number) => {
          const [r, c] = idx(i);
          return d0 === 1 ? ([r, c] as const) : ([c, r] as const);
        };
        facG.push(g.map((x, i) => x * rowFactor[at(i)[0]]! * colFactor[at(i)[1]]!));
        rowF.push(g.map((_, i) => t.row![k]![at(i)[0]]!));
        colF.push(g.map((_, i) => t.col![k]![at(i)[1]]!));
        rsRow.push(rowF[k]!.map((x) => rsqrt(x + 1e-8)));
        rsCol.push(colF[k]!.map((x) => rsqrt(x + 1e-8)));
        facMom.push(t.m[k]!.map((x, i) => x * rowFactor[at(i)[0]]! * colFactor[at(i)[1]]!));
      }
    } else {
      for (let k = 0; k < 3; k++) {
        t.full![k] = t.full![k]!.map((x, i) => fac[k]! * x + (1 - fac[k]!) * gsq[i]!);
        const f = t.full![k]!;
        facG.push(g.map((x, i) => x * rsqrt(Math.max(f[i]! + 1e-9, 1e-9))));
        rowF.push(f.slice());
        colF.push(f.slice());
        rsRow.push(f.map((x) => rsqrt(x + 1e-8)));
        rsCol.push(f.map((x) => rsqrt(x + 1e-8)));
        facMom.push(t.m[k]!.map((x, i) => x * Math.pow(f[i]! + 1e-6, -0.5)));
      }
    }
    ch.push(...facG, ...rowF, ...colF, ...rsRow, ...rsCol, ...facMom);
    const features = ch.map((c) => {
      const ms = c.reduce((s, x) => s + x * x, 0) / n;
      return c.map((x) => x * rsqrt(1e-5 + ms));
    });
    const time = [1, 3, 10, 30, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5].map((tau) => Math.tanh(step / tau - 1));
    const W = (name: string, cols: number) => {
      const w = th[name]!;
      return (r: number, c: number) => w[r * cols + c]!;
    };
    const w0 = W('mlp/w0', hidden),
      w1 = W('mlp/w1', hidden),
      w2 = W('mlp/w2', 2);
    const update: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = [...features.map((c) => c[i]!), ...time];
      const h1 = th['mlp/b0']!.map((b, j) =>
        Math.max(
          0,
          x.reduce((s, xv, r) => s + xv * w0(r, j), b),
        ),
      );
      const h2 = th['mlp/b1']!.map((b, j) =>
        Math.max(
          0,
          h1.reduce((s, hv, r) => s + hv * w1(r, j), b),
        ),
      );
      const out = th['mlp/b2']!.map((b, j) => h2.reduce((s, hv, r) => s + hv * w2(r, j), b));
      const s = out[0]! * Math.exp(0.001 * out[1]!) * stepMult;
      update.push(-s * mup);
    }
    for (let i = 0; i < n; i++) t.p[i] = t.p[i]! + update[i]!;
    return { features, update };
  }

  function refTensor(shape: number[], p: number[]): RefTensor {
    const n = p.length;
    const z = (len: number) => [0, 1, 2].map(() => new Array<number>(len).fill(0));
    const t: RefTensor = { shape, p: p.slice(), m: z(n), v: new Array(n).fill(0) };
    if (shape.length === 2) {
      const d0 = shape[1]! >= shape[0]! ? 1 : 0;
      t.row = z(shape[1 - d0]!);
      t.col = z(shape[d0]!);
    } else {
      t.full = z(n);
    }
    return t;
  }

  describe('μLO against an independent float64 reference', () => {
    it('features and updates of a 2×3 weight and a length-3 bias over two steps', () => {
      const lo = smallFcLopt({ hiddenSize: 4 });
      const offsets = { 'decay/momentum': [0.3, 0, -0.1], 'decay/rms': [0.02], 'decay/adafactor': [0.1, -0.2, 0.75] };
      const theta = randomTheta(lo, 11, offsets);
      const th: Record<string, number[]> = {};
      for (const [k, v] of Object.entries(theta)) th[k] = arr(v);
      const rng = Rng.from(5);
      const draw = (n: number, s: number) => Array.from({ length: n }, () => s * rng.normal());
      const p0 = { w: draw(6, 1), b: draw(3, 0.1) };
      const gs = [
        { w: draw(6, 0.1), b: draw(3, 0.01) },
        { w: draw(6, 0.2), b: draw(3, 0.05) },
      ];
      const mupW = 0.5;
      const ref = { w: refTensor([2, 3], p0.w), b: refTensor([3], p0.b) };

      const opt = lo.optimizer(theta, { mupScale: { w: mupW, b: 1 } });
      let params: Params = { w: tf.tensor2d(p0.w, [2, 3]), b: tf.tensor1d(p0.b) };
      let state = opt.init(params);
      gs.forEach((g, step) => {
        const rw = refStep(ref.w, g.w, step, th, 4, 0.01, mupW);
        const rb = refStep(ref.b, g.b, step, th, 4, 0.01, 1);
        const grads: Params = { w: tf.tensor2d(g.w, [2, 3]), b: tf.tensor1d(g.b) };
        // Features as the production code builds them from the same state (before the step).
        tf.tidy(() => {
          const inner = state.inner as { acc: Record<string, Record<string, tf.Tensor>> };
          const decays = {
            momentum: metaDecays(tf.expandDims(theta['decay/momentum']!, 0), [0.9, 0.99, 0.999], false),
            rms: metaDecays(tf.expandDims(theta['decay/rms']!, 0), [0.999], true),
            adafactor: metaDecays(tf.expandDims(theta['decay/adafactor']!, 0), [0.9, 0.99, 0.999], true),
          };
          for (const [name, want] of [
            ['w', rw.features],
            ['b', rb.features],
          ] as const) {
            const f = tensorFeatures('adafactor', tf.expandDims(grads[name]!, 0), tf.expandDims(params[name]!, 0), inner.acc[name]!, decays);
            expectClose(arr(normalizedFeatures(f)), want.flat(), 1e-4, 1e-6);
          }
        });
        const r = opt.update(grads, state, params);
        expectClose(arr(r.updates['w']!), rw.update, 1e-4, 1e-9);
        expectClose(arr(r.updates['b']!), rb.update, 1e-4, 1e-9);
        const next: Params = { w: tf.add(params['w']!, r.updates['w']!), b: tf.add(params['b']!, r.updates['b']!) };
        tf.dispose([Object.values(r.updates), Object.values(params), Object.values(grads)]);
        disposeReplaced(state.inner, r.state.inner);
        params = next;
        state = r.state;
      });
      expect((state.inner as { count: number }).count).toBe(2);
      disposeParams(params);
      disposeParams(theta);
      tf.dispose(state.inner as tf.TensorContainer);
    });

    it('an MLP output of (1, 0) steps by exactly stepMult times the μP scale', () => {
      for (const [mup, stepMult] of [
        [true, 0.01],
        [false, 0.001],
      ] as const) {
        const lo = smallFcLopt({ mup });
        const theta = constantOutputTheta(lo, 2);
        const opt = lo.optimizer(theta, { mupScale: (name) => (name === 'w' ? 0.25 : 1) });
        const params: Params = { w: tf.randomNormal([4, 3], 0, 1, 'float32', 1), b: tf.zeros([3]), s: tf.scalar(2) };
        const grads: Params = { w: tf.randomNormal([4, 3], 0, 1, 'float32', 2), b: tf.ones([3]), s: tf.scalar(-1) };
        const state = opt.init(params);
        const r = opt.update(grads, state, params);
        expect(arr(r.updates['w']!)).toEqual(new Array(12).fill(Math.fround(-stepMult * 0.25)));
        expect(arr(r.updates['b']!)).toEqual(new Array(3).fill(Math.fround(-stepMult)));
        expect(r.updates['s']!.shape).toEqual([]);
        tf.dispose([Object.values(r.updates), Object.values(params), Object.values(grads), Object.values(theta)]);
        tf.dispose([state.inner, r.state.inner] as unknown as tf.TensorContainer);
      }
    });
  });

  // ---------------------------------------------------------------------------------------------

  function runSteps(
    lo: LearnedOptimizer,
    theta: Params,
    options: Parameters<LearnedOptimizer['optimizer']>[1],
    init: Params,
    gradSeq: Params[],
  ): { params: Params; updates: Params[] } {
    const opt = lo.optimizer(theta, options);
    let params: Params = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, tf.clone(v)]));
    let state: OptimizerState = opt.init(params);
    const updates: Params[] = [];
    for (const grads of gradSeq) {
      const r = opt.update(grads, state, params);
      updates.push(r.updates);
      const next: Params = {};
      for (const [k, p] of Object.entries(params)) next[k] = tf.add(p, r.updates[k]!);
      disposeParams(params);
      disposeReplaced(state.inner, r.state.inner);
      params = next;
      state = r.state;
    }
    tf.dispose(state.inner as tf.TensorContainer);
    return { params, updates };
  }

  describe('population', () => {
    for (const make of [() => smallFcLopt({ hiddenSize: 8 }), () => mlpLopt({ hiddenSize: 8 })]) {
      it(`${make().arch}: P-batched updates equal P separate ones (P = 3, distinct thetas)`, () => {
        const lo = make();
        const P = 3;
        const thetas = [0, 1, 2].map((i) => randomTheta(lo, 20 + i));
        // (tfjs treats seed 0 as 'no seed': every seed below is ≥ 1)
        const shapes: Record<string, number[]> = { conv: [3, 3, 2, 4], w: [5, 6], b: [6], s: [] };
        const init = (k: number): Params =>
          Object.fromEntries(Object.entries(shapes).map(([n, s], j) => [n, tf.randomNormal(s, 0, 1, 'float32', 100 * k + j + 1)]));
        const grads = (k: number, step: number): Params =>
          Object.fromEntries(Object.entries(shapes).map(([n, s], j) => [n, tf.randomNormal(s, 0, 0.1 * (j + 1), 'float32', 1000 * step + 100 * k + j + 1)]));
        const steps = 3;
        const single = [0, 1, 2].map((k) =>
          runSteps(
            lo,
            thetas[k]!,
            {},
            init(k),
            Array.from({ length: steps }, (_, s) => grads(k, s)),
          ),
        );
        const stackP = (trees: Params[]) => Object.fromEntries(Object.keys(shapes).map((n) => [n, tf.stack(trees.map((t) => t[n]!))])) as Params;
        const batched = runSteps(
          lo,
          stackThetas(thetas),
          { population: P },
          stackP([0, 1, 2].map(init)),
          Array.from({ length: steps }, (_, s) => stackP([0, 1, 2].map((k) => grads(k, s)))),
        );
        for (let s = 0; s < steps; s++) {
          for (const n of Object.keys(shapes)) {
            const want = [0, 1, 2].flatMap((k) => arr(single[k]!.updates[s]![n]!));
            // float32 sums in a different order: tolerance relative to the tensor's largest step.
            const atol = 1e-4 * Math.max(...want.map(Math.abs));
            try {
              expectClose(arr(batched.updates[s]![n]!), want, 1e-4, atol);
            } catch (e) {
              throw new Error(`step ${s} '${n}': ${(e as Error).message}`);
            }
          }
        }
        tf.disposeVariables();
      });
    }
  });

  describe('non-finite gradients', () => {
    for (const finiteCheck of ['read', 'mask'] as const) {
      it(`${finiteCheck}: zero update for that tensor, warning, state not poisoned`, () => {
        const lo = smallFcLopt({ hiddenSize: 8 });
        const theta = randomTheta(lo, 3);
        const warnings: string[] = [];
        const onWarning = finiteCheck === 'read' ? (e: { parameter: string; step: number }) => warnings.push(`${e.parameter}@${e.step}`) : undefined;
        const opt = lo.optimizer(theta, { onWarning, finiteCheck } as never);
        const p0: Params = { w: tf.randomNormal([4, 5], 0, 1, 'float32', 1), b: tf.randomNormal([5], 0, 1, 'float32', 2) };
        const g1: Params = { w: tf.randomNormal([4, 5], 0, 1, 'float32', 3), b: tf.randomNormal([5], 0, 1, 'float32', 4) };
        const g2: Params = { w: tf.randomNormal([4, 5], 0, 1, 'float32', 5), b: tf.randomNormal([5], 0, 1, 'float32', 6) };
        const bad: Params = { w: tf.tensor2d([...new Array(19).fill(0.1), NaN], [4, 5]), b: tf.randomNormal([5], 0, 1, 'float32', 7) };

        // Run A: g1, (NaN in w), g2. Run B: g1, g2 with the counter advanced by one (the counter
        // counts every step, skipped ones included), and b's accumulators fed `bad.b` too.
        const a0 = opt.init(p0);
        const a1 = opt.update(g1, a0, p0);
        const a2 = opt.update(bad, a1.state, p0);
        expect(arr(a2.updates['w']!).every((x) => x === 0)).toBe(true);
        expect(arr(a2.updates['b']!).some((x) => x !== 0)).toBe(true);
        expect(arr(a2.updates['b']!).every(Number.isFinite)).toBe(true);
        const a3 = opt.update(g2, a2.state, p0);
        if (finiteCheck === 'read') expect(warnings).toEqual(['w@1']);

        const wOnly = lo.optimizer(theta, {});
        const b1 = wOnly.update(g1, wOnly.init(p0), p0);
        // The w accumulators must equal those after g1 alone; b's those after g1 then bad.b.
        const accA = (a2.state.inner as { acc: Record<string, Record<string, tf.Tensor>> }).acc;
        const accB = (b1.state.inner as { acc: Record<string, Record<string, tf.Tensor>> }).acc;
        for (const key of Object.keys(accB['w']!)) expect(arr(accA['w']![key]!)).toEqual(arr(accB['w']![key]!));
        const skipped = { spec: b1.state.spec, inner: { ...(b1.state.inner as object), count: 2 } } as OptimizerState;
        const b3 = wOnly.update(g2, skipped, p0);
        expect(arr(a3.updates['w']!)).toEqual(arr(b3.updates['w']!));
        expect(arr(a3.updates['w']!).every(Number.isFinite)).toBe(true);
        tf.disposeVariables();
      });
    }

    it('population: only the non-finite member of a tensor is skipped', () => {
      const lo = mlpLopt({ hiddenSize: 4 });
      const theta = stackThetas([randomTheta(lo, 1), randomTheta(lo, 2)]);
      const warnings: string[] = [];
      const opt = lo.optimizer(theta, { population: 2, onWarning: (e) => warnings.push(e.parameter) });
      const p: Params = { w: tf.randomNormal([2, 3, 3], 0, 1, 'float32', 1) };
      const g: Params = { w: tf.tensor3d([...new Array(9).fill(0.5), Infinity, ...new Array(8).fill(0.5)], [2, 3, 3]) };
      const r = opt.update(g, opt.init(p), p);
      const u = arr(r.updates['w']!);
      expect(u.slice(0, 9).every((x) => x !== 0 && Number.isFinite(x))).toBe(true);
      expect(u.slice(9).every((x) => x === 0)).toBe(true);
      expect(warnings).toEqual(['w[member 1]']);
      expect(
        arr((r.state.inner as { acc: Record<string, Record<string, tf.Tensor>> }).acc['w']!['m']!)
          .slice(54)
          .every((x) => x === 0),
      ).toBe(true);
    });
  });

  describe('config ranges (files and recipes build through the same check)', () => {
    it('refuse values that would turn a step into garbage, naming the key and the allowed range', () => {
      expect(() => smallFcLopt({ stepMult: -1 })).toThrow(`small_fc_lopt: config 'stepMult' must be a number in (0, 1]; got -1`);
      expect(() => smallFcLopt({ stepMult: 0 })).toThrow(/'stepMult' must be a number in \(0, 1\]; got 0/);
      expect(() => smallFcLopt({ stepMult: 1e300 })).toThrow(/'stepMult' must be a number in \(0, 1\]; got 1e\+300/);
      expect(() => smallFcLopt({ expMult: 1e30 })).toThrow(/'expMult' must be a number in \[0, 0.1\]; got 1e\+30/);
      expect(() => smallFcLopt({ hiddenSize: 2.5 })).toThrow(/'hiddenSize' must be an integer in \[1, 4096\]/);
      expect(() => createLearnedOptimizer('mlp_lopt', { stepMult: -0.5 })).toThrow(/mlp_lopt: config 'stepMult' must be a number in \(0, 1\]/);
      expect(() => createLearnedOptimizer('small_fc_lopt', { mup: 'yes' })).toThrow(/'mup' must be a boolean/);
      expect(() => createLearnedOptimizer('small_fc_lopt', { ['\u001b[2J']: 1 })).toThrow(/unknown config key '\\u001b\[2J'/);
      expect(smallFcLopt({ stepMult: 1, expMult: 0 }).config['stepMult']).toBe(1);
    });
  });

  describe('fraction-of-training features (lopt variant)', () => {
    it("are VeLO's embedding tanh(10·(step/total − c))", () => {
      expect(fractionFeatures(0, 100)).toEqual([0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1].map((c) => Math.tanh(-10 * c)));
      expect(fractionFeatures(50, 100)[3]).toBeCloseTo(Math.tanh(1), 12);
    });

    it('with their rows of w0 at zero, the variant steps exactly as μLO; otherwise the step depends on totalSteps', () => {
      const plain = smallFcLopt();
      const variant = smallFcLopt({ fractionFeatures: true });
      expect(variant.thetaShapes['mlp/w0']).toEqual([48, 32]);
      const theta = randomTheta(plain, 31);
      const w0 = theta['mlp/w0']!;
      const zeroRows = tf.concat([w0, tf.zeros([9, 32])], 0);
      const thetaV: Params = { ...theta, 'mlp/w0': zeroRows };
      const p = { w: tf.randomNormal([6, 4], 0, 1, 'float32', 3), b: tf.randomNormal([4], 0, 1, 'float32', 4) };
      const g = { w: tf.randomNormal([6, 4], 0, 0.1, 'float32', 5), b: tf.randomNormal([4], 0, 0.1, 'float32', 6) };
      const run = (lo: LearnedOptimizer, th: Params, totalSteps: number) => {
        const opt = lo.optimizer(th, { totalSteps });
        const r = opt.update(g, opt.init(p), p);
        return { w: arr(r.updates['w']!), b: arr(r.updates['b']!) };
      };
      const [rv, rp] = [run(variant, thetaV, 10), run(plain, theta, 10)];
      if (mode === 'ops') expect(rv).toEqual(rp);
      // The kernel folds 20 global features instead of 11 into the bias: zeros, but another FMA chain.
      expectClose(rv.w, rp.w);
      expectClose(rv.b, rp.b);
      const rows = tf.concat([w0, tf.fill([9, 32], 0.3)], 0);
      const thetaR: Params = { ...theta, 'mlp/w0': rows };
      // At step 0 the fraction is 0 for any horizon; after 5 steps it is 5/10 or 5/1000.
      const after = (totalSteps: number) => {
        const opt = variant.optimizer(thetaR, { totalSteps });
        let state = opt.init(p);
        let out: number[] = [];
        for (let s = 0; s < 6; s++) {
          const r = opt.update(g, state, p);
          out = arr(r.updates['w']!);
          state = r.state;
        }
        return out;
      };
      expect(after(10)).not.toEqual(after(1000));
    });

    it('refuses to run without totalSteps, saying how to give it', () => {
      const lo = smallFcLopt({ fractionFeatures: true });
      const opt = lo.optimizer(lo.initTheta(1));
      expect(() => opt.init({ w: tf.zeros([2, 2]) })).toThrow(/needs the planned number of steps: totalSteps .*asTfjsOptimizer\(\{ totalSteps: 5000 \}\)/);
    });
  });

  describe('memory and model.fit', () => {
    for (const make of [() => smallFcLopt(), () => mlpLopt()]) {
      it(`${make().arch}: no tensor growth over 1,000 steps`, () => {
        const lo = make();
        const theta = lo.initTheta(0);
        const opt = lo.optimizer(theta, { mupScale: { kernel: 0.25, bias: 1 } });
        let params: Params = { kernel: tf.randomNormal([4, 3], 0, 1, 'float32', 1), bias: tf.zeros([3]) };
        const grads: Params = { kernel: tf.randomNormal([4, 3], 0, 1, 'float32', 2), bias: tf.ones([3]) };
        let state = opt.init(params);
        ({ params, state } = opt.step(params, grads, state));
        const before = tf.memory().numTensors;
        for (let i = 0; i < 1000; i++) ({ params, state } = opt.step(params, grads, state));
        expect(tf.memory().numTensors).toBe(before);
        expect(arr(params['kernel']!).every(Number.isFinite)).toBe(true);
        disposeParams(params);
        disposeParams(grads);
        disposeParams(theta);
        tf.dispose(state.inner as tf.TensorContainer);
      });
    }

    it('a tfjs model trains with fit and a randomly initialised μLO, without tensor growth', async () => {
      const lo = smallFcLopt();
      const theta = lo.initTheta(4);
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ units: 8, inputShape: [5], activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }) }));
      m.add(tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }) }));
      m.compile({ optimizer: asTfjsOptimizer(lo.optimizer(theta)), loss: 'meanSquaredError' });
      const x = tf.randomNormal([64, 5], 0, 1, 'float32', 3);
      const y = tf.randomNormal([64, 2], 0, 1, 'float32', 4);
      const w0 = arr(m.getWeights()[0]!);
      await m.fit(x, y, { epochs: 1, batchSize: 16, shuffle: false, verbose: 0 });
      const before = tf.memory().numTensors;
      const h = await m.fit(x, y, { epochs: 3, batchSize: 16, shuffle: false, verbose: 0 });
      expect(tf.memory().numTensors).toBe(before);
      expect((h.history['loss'] as number[]).every(Number.isFinite)).toBe(true);
      const w1 = arr(m.getWeights()[0]!);
      expect(w1.some((v, i) => v !== w0[i])).toBe(true);
      m.dispose();
      tf.dispose([x, y]);
      disposeParams(theta);
    });
  });
});
