/**
 * Behaviour the reference vectors do not pin, checked against small float64 re-implementations
 * written from the references' formulas (optax, tensorflow_addons, PyTorch, the TVLARS code).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adam, adamw, muadam } from '../src/optim/baselines/adam.js';
import { lamb } from '../src/optim/baselines/lamb.js';
import { lars, tvlars } from '../src/optim/baselines/lars.js';
import { momentum, nesterov, sgd } from '../src/optim/baselines/sgd.js';
import { constantSchedule, mlperfPoly2, warmupCosine, warmupPolynomial } from '../src/optim/schedules.js';
import { mismatch } from './helpers/reference.js';
import { norm, trajectory } from './helpers/run.js';
import { useBackend } from './helpers/backend.js';

beforeAll(async () => {
  await useBackend('wasm');
});

const close = (a: number[], b: number[], rtol = 2e-5, atol = 1e-7) => expect(mismatch(a, b, rtol, atol)).toBeNull();
const sub = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);

describe('schedules', () => {
  it('warmupCosine is linear then a half cosine, as optax', () => {
    const s = warmupCosine({ peak: 1, warmupSteps: 10, totalSteps: 110, init: 0.1, end: 0.01 });
    expect(s(0)).toBeCloseTo(0.1, 12);
    expect(s(5)).toBeCloseTo(0.55, 12);
    expect(s(10)).toBeCloseTo(1, 12);
    expect(s(60)).toBeCloseTo(0.01 + 0.5 * 0.99, 12);
    expect(s(110)).toBeCloseTo(0.01, 12);
    expect(s(500)).toBeCloseTo(0.01, 12);
  });
  it('warmupPolynomial decays from step 0 over totalSteps, overridden during warmup (BERT)', () => {
    const s = warmupPolynomial({ peak: 2, warmupSteps: 10, totalSteps: 100 });
    expect(s(0)).toBe(0);
    expect(s(5)).toBeCloseTo(1, 12);
    expect(s(10)).toBeCloseTo(2 * 0.9, 12);
    expect(s(50)).toBeCloseTo(1, 12);
    expect(s(100)).toBe(0);
    const p2 = warmupPolynomial({ peak: 1, warmupSteps: 0, totalSteps: 10, power: 2, end: 0.1 });
    expect(p2(5)).toBeCloseTo(0.9 * 0.25 + 0.1, 12);
  });
  it('mlperfPoly2 warms up then decays with power 2 from the end of warmup', () => {
    const s = mlperfPoly2({ peak: 4, warmupSteps: 10, totalSteps: 110, end: 1e-4 });
    expect(s(5)).toBeCloseTo(2, 12);
    expect(s(10)).toBeCloseTo(4, 12);
    expect(s(60)).toBeCloseTo((4 - 1e-4) * 0.25 + 1e-4, 12);
    expect(s(110)).toBeCloseTo(1e-4, 12);
  });
  it('rejects bad schedule fields', () => {
    expect(() => warmupCosine({ peak: 1, warmupSteps: 20, totalSteps: 10 })).toThrow(/warmupSteps.*must not exceed.*totalSteps/);
    expect(() => constantSchedule(-1)).toThrow(/'value' must be a finite number >= 0; got -1/);
  });
});

describe('learning rate placement under a schedule', () => {
  const lrs = [0.1, 0.05, 0.02];
  const schedule = Object.assign((t: number) => lrs[t]!, { config: { type: 'constant' as const, value: 0 } });
  const g = [
    [0.3, -0.2],
    [0.1, 0.4],
    [-0.5, 0.2],
  ];

  it('PyTorch SGD momentum: lr outside the buffer', () => {
    const traj = trajectory(momentum({ learningRate: schedule, momentum: 0.9 }), { w: [1, 2] }, (_p, k) => ({ w: g[k]! }), 3);
    let b = [0, 0];
    let w = [1, 2];
    for (let k = 0; k < 3; k++) {
      b = b.map((x, i) => 0.9 * x + g[k]![i]!);
      w = w.map((x, i) => x - lrs[k]! * b[i]!);
      close(traj[k]!.w!, w);
    }
  });

  it('optax LARS: lr inside the momentum trace', () => {
    const traj = trajectory(lars({ learningRate: schedule, momentum: 0.9, trustCoefficient: 0.5 }), { w: [1, 2] }, (_p, k) => ({ w: g[k]! }), 3);
    let t = [0, 0];
    let w = [1, 2];
    for (let k = 0; k < 3; k++) {
      const r = (0.5 * norm(w)) / norm(g[k]!);
      t = t.map((x, i) => -lrs[k]! * r * g[k]![i]! + 0.9 * x);
      w = w.map((x, i) => x + t[i]!);
      close(traj[k]!.w!, w);
    }
  });

  it('PyTorch AdamW: decay scaled by the scheduled lr', () => {
    const traj = trajectory(adamw({ learningRate: schedule, weightDecay: 0.1 }), { w: [1, 2] }, (_p, k) => ({ w: g[k]! }), 3);
    let m = [0, 0],
      v = [0, 0],
      w = [1, 2];
    for (let k = 0; k < 3; k++) {
      const lr = lrs[k]!;
      w = w.map((x) => x * (1 - lr * 0.1));
      m = m.map((x, i) => 0.9 * x + 0.1 * g[k]![i]!);
      v = v.map((x, i) => 0.999 * x + 0.001 * g[k]![i]! ** 2);
      const bc1 = 1 - 0.9 ** (k + 1),
        bc2 = 1 - 0.999 ** (k + 1);
      w = w.map((x, i) => x - (lr * m[i]!) / bc1 / (Math.sqrt(v[i]! / bc2) + 1e-8));
      close(traj[k]!.w!, w);
    }
  });
});

describe('trust ratios', () => {
  it('LARS and LAMB leave the update unscaled when a norm is zero', () => {
    // w = 0: LARS ratio is 1, so the step is −lr·g exactly (momentum 0).
    const tl = trajectory(lars({ learningRate: 0.1, momentum: 0 }), { w: [0, 0] }, () => ({ w: [1, -2] }), 1);
    close(tl[0]!.w!, [-0.1, 0.2]);
    // zero gradient: LAMB's u = 0 and w stays.
    const tz = trajectory(lamb({ learningRate: 0.1 }), { w: [1, 2] }, () => ({ w: [0, 0] }), 1);
    close(tz[0]!.w!, [1, 2]);
    // w = 0 for LAMB: ratio 1, step −lr·m̂/(√v̂+ε) = −lr·sign(g) to within ε.
    const tw = trajectory(lamb({ learningRate: 0.1 }), { w: [0, 0] }, () => ({ w: [0.5, -0.5] }), 1);
    close(tw[0]!.w!, [-0.1, 0.1], 1e-5, 1e-6);
  });

  it('LAMB: excludeFromWeightDecay also excludes layer adaptation unless excludeFromLayerAdaptation is given', () => {
    const init = { 'dense/kernel': [3, 4], 'dense/bias': [1, 1] };
    const grad = () => ({ 'dense/kernel': [0.1, 0.1], 'dense/bias': [0.2, -0.1] });
    const a = trajectory(lamb({ learningRate: 0.1, weightDecay: 0.5, excludeFromWeightDecay: ['bias'] }), init, grad, 1)[0]!;
    // bias: plain Adam step (no decay, no ratio): −lr·sign(g)
    close(a['dense/bias']!, [1 - 0.1, 1 + 0.1], 1e-5, 1e-6);
    // kernel: u = sign(g) + 0.5·w = [2.5, 3]; ratio ‖w‖/‖u‖; w − lr·ratio·u
    const u = [1 + 1.5, 1 + 2];
    const r = norm([3, 4]) / norm(u);
    close(a['dense/kernel']!, [3 - 0.1 * r * u[0]!, 4 - 0.1 * r * u[1]!], 1e-5, 1e-6);
    // With excludeFromLayerAdaptation: [] the bias gets the ratio ‖w‖/‖u‖ = √2/√2 = 1 too — pick a bias whose ratio differs.
    const b = trajectory(
      lamb({ learningRate: 0.1, weightDecay: 0.5, excludeFromWeightDecay: ['bias'], excludeFromLayerAdaptation: ['kernel'] }),
      { 'dense/kernel': [3, 4], 'dense/bias': [3, 0] },
      grad,
      1,
    )[0]!;
    const rb = norm([3, 0]) / norm([1, 1]);
    close(b['dense/bias']!, [3 - 0.1 * rb, 0 + 0.1 * rb], 1e-5, 1e-6);
    // kernel: decayed but not adapted
    close(b['dense/kernel']!, [3 - 0.1 * u[0]!, 4 - 0.1 * u[1]!], 1e-5, 1e-6);
    // An empty excludeFromLayerAdaptation falls back to excludeFromWeightDecay, as in tensorflow_addons.
    // (A bias of [3, 0] would be scaled by ‖w‖/‖u‖ = 3/√2 if it were adapted.)
    const c = trajectory(
      lamb({ learningRate: 0.1, weightDecay: 0.5, excludeFromWeightDecay: ['bias'], excludeFromLayerAdaptation: [] }),
      { 'dense/kernel': [3, 4], 'dense/bias': [3, 0] },
      grad,
      1,
    )[0]!;
    close(c['dense/bias']!, [3 - 0.1, 0 + 0.1], 1e-5, 1e-6);
  });

  it('LARS weight-decay and trust-ratio masks are independent (optax)', () => {
    const init = { 'fc/w': [3, 4], 'fc/bias': [2, 0] };
    const grad = () => ({ 'fc/w': [0.1, 0.2], 'fc/bias': [0.3, 0.4] });
    const o = lars({ learningRate: 1, momentum: 0, weightDecay: 0.1, trustCoefficient: 0.01, excludeFromTrustRatio: ['bias'] });
    const s = trajectory(o, init, grad, 1)[0]!;
    const ub = [0.3 + 0.2, 0.4]; // decayed (weight-decay mask is all), no ratio
    close(s['fc/bias']!, [2 - ub[0]!, -ub[1]!]);
    const uw = [0.1 + 0.3, 0.2 + 0.4];
    const r = (0.01 * 5) / norm(uw);
    close(s['fc/w']!, [3 - r * uw[0]!, 4 - r * uw[1]!]);
  });

  it('TVLARS multiplies the ratio by φ(t) = 1/(α + e^{λ(t − d_e)}) + γ_min, t = step + 1', () => {
    const o = tvlars({ learningRate: 1, momentum: 0, lambda: 0.5, alpha: 0.1, delaySteps: 1, gammaMin: 0.05, trustCoefficient: 0.01 });
    const gvec = [0.3, -0.4];
    const traj = trajectory(o, { w: [3, 4] }, () => ({ w: gvec }), 3);
    let w = [3, 4];
    for (let k = 0; k < 3; k++) {
      const t = k + 1;
      const phi = 1 / (0.1 + Math.exp(0.5 * (t - 1))) + 0.05;
      const r = (0.01 * phi * norm(w)) / norm(gvec);
      w = w.map((x, i) => x - r * gvec[i]!);
      close(traj[k]!.w!, w);
    }
  });
});

describe('other options', () => {
  it('Nesterov and plain SGD with L2 weight decay and exclusions (PyTorch)', () => {
    const init = { k: [1, -1], bias: [0.5, 0.5] };
    const grad = () => ({ k: [0.2, 0.1], bias: [0.1, 0.1] });
    const traj = trajectory(nesterov({ learningRate: 0.1, weightDecay: 0.1, excludeFromWeightDecay: ['bias'] }), init, grad, 2);
    let w = [1, -1],
      b = [0, 0];
    for (let k = 0; k < 2; k++) {
      const gk = [0.2 + 0.1 * w[0]!, 0.1 + 0.1 * w[1]!];
      b = b.map((x, i) => 0.9 * x + gk[i]!);
      w = w.map((x, i) => x - 0.1 * (gk[i]! + 0.9 * b[i]!));
      close(traj[k]!.k!, w);
    }
    close(traj[0]!.bias!, [0.5 - 0.1 * 0.1 * 1.9, 0.5 - 0.1 * 0.1 * 1.9]);
    const plain = trajectory(sgd({ learningRate: 0.5 }), { w: [1] }, () => ({ w: [2] }), 2);
    close(plain[1]!.w!, [-1]);
  });

  it('clipGlobalNorm rescales all gradients together before the optimizer', () => {
    // ‖g‖ = 5 over two tensors, clipped to 1: g/5.
    const traj = trajectory(sgd({ learningRate: 1, clipGlobalNorm: 1 }), { a: [0], b: [0] }, () => ({ a: [3], b: [4] }), 1);
    close([traj[0]!.a![0]!, traj[0]!.b![0]!], [-0.6, -0.8]);
    const small = trajectory(sgd({ learningRate: 1, clipGlobalNorm: 10 }), { a: [0], b: [0] }, () => ({ a: [3], b: [4] }), 1);
    close([small[0]!.a![0]!, small[0]!.b![0]!], [-3, -4]);
  });

  it('μAdam is Adam times each tensor’s μP scale', () => {
    const init = {
      hidden: [
        [1, 2],
        [3, 4],
      ],
      out: [1, 1],
    };
    const grad = () => ({ hidden: [0.1, -0.2, 0.3, 0.4], out: [0.5, -0.5] });
    const a = trajectory(adam({ learningRate: 0.01 }), init, grad, 2);
    const m = trajectory(muadam({ learningRate: 0.01, mupScale: { hidden: 0.5, out: 1 } }), init, grad, 2);
    close(
      sub(m[1]!.hidden!, [1, 2, 3, 4]),
      sub(a[1]!.hidden!, [1, 2, 3, 4]).map((x) => x * 0.5),
      1e-4,
      1e-7,
    );
    close(m[1]!.out!, a[1]!.out!);
    const fn = trajectory(muadam({ learningRate: 0.01, mupScale: (_n, shape) => 1 / shape[0]! }), init, grad, 2);
    close(fn[1]!.hidden!, m[1]!.hidden!);
  });

  it('Adam with L2 weightDecay adds wd·w to the gradient (PyTorch Adam)', () => {
    const t = trajectory(adam({ learningRate: 0.1, weightDecay: 1 }), { w: [2] }, () => ({ w: [-2] }), 1);
    // g + wd·w = 0 → m = v = 0 → no step
    close(t[0]!.w!, [2]);
  });
});

describe('state is kept apart from the caller', () => {
  it('update() returns updates that the caller may dispose without harming the state', () => {
    const o = lars({ learningRate: 0.1 });
    const w = { w: tf.tensor1d([1, 2]) };
    const s0 = o.init(w);
    const g = { w: tf.tensor1d([0.1, 0.1]) };
    const r = o.update(g, s0, w);
    tf.dispose(Object.values(r.updates));
    tf.dispose(Object.values(g));
    const r2 = o.update({ w: tf.tensor1d([0.1, 0.1]) }, r.state, w);
    expect(r2.updates.w!.dataSync()[0]).toBeLessThan(0);
  });
});
