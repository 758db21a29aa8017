import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import type { Params } from '../src/tree/params.js';
import type { Task } from '../tasks/types.js';
import {
  RELATIVE_LOSS_MAX,
  logisticRegressionName,
  logisticRegressionTask,
  noisyQuadraticName,
  noisyQuadraticTask,
  parseLogisticRegressionName,
  parseNoisyQuadraticName,
  parseQuadraticName,
  parseRosenbrockName,
  quadraticName,
  quadraticTask,
  rosenbrockName,
  rosenbrockStart,
  rosenbrockTask,
  rosenbrockValue,
} from '../tasks/synthetic/index.js';
import { populationVsSingles, trainWithAdam } from './helpers/taskChecks.js';

// initBackend, not bare setBackend: it loads tfjs-layers, whose bundle registers the gradients.
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const small = {
  quadratic: () => quadraticTask({ dim: 8, condition: 100 }),
  'quadratic-diag': () => quadraticTask({ dim: 8, condition: 100, rotated: false }),
  'noisy-quadratic': () => noisyQuadraticTask({ dim: 10, batchSize: 16 }),
  rosenbrock: () => rosenbrockTask({ dim: 3 }),
  logreg: () => logisticRegressionTask({ dim: 5, classes: 3, batchSize: 8, numPoints: 200 }),
};
type Kind = keyof typeof small;
const kinds = Object.keys(small) as Kind[];

/** Per-member loss and gradients of the summed loss, as float arrays. */
function lossAndGrads(task: Task, params: Params, batch: Record<string, tf.Tensor>) {
  const names = Object.keys(params);
  const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) => {
    const p: Params = {};
    names.forEach((n, i) => (p[n] = ws[i]!));
    return tf.sum(task.loss(p, batch)) as tf.Scalar;
  })(names.map((n) => params[n]!));
  return { value, grads };
}

const read = (t: tf.Tensor) => Array.from(t.dataSync());
const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('population axis: batched loss and gradients equal member-by-member evaluations', () => {
  it.each(kinds)('%s', (kind) => {
    expect(populationVsSingles(small[kind](), [3, 3, 7, 11])).toBeLessThanOrEqual(1e-4);
  });
  it('logreg inner-valid split too', () => {
    expect(populationVsSingles(small.logreg(), [3, 3, 7, 11], 'inner-valid')).toBeLessThanOrEqual(1e-4);
  });
});

describe('Adam lowers the training loss clearly', () => {
  const runs: Record<Kind, { steps: number; lr: number }> = {
    quadratic: { steps: 150, lr: 0.1 },
    'quadratic-diag': { steps: 150, lr: 0.1 },
    'noisy-quadratic': { steps: 150, lr: 0.05 },
    rosenbrock: { steps: 200, lr: 0.02 },
    logreg: { steps: 150, lr: 0.05 },
  };
  it.each(kinds)('%s', async (kind) => {
    const { steps, lr } = runs[kind];
    const { first, last } = await trainWithAdam(small[kind](), steps, lr);
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(0.5 * first);
  });
});

describe('loss values against an independent float64 computation on tiny instances', () => {
  it('quadratic (rotated): ½ Σ λ_i (Qw − c)_i², Q orthogonal, λ log-spaced 1..κ', () => {
    const task = quadraticTask({ dim: 3, condition: 10 });
    const { lambda, rotation, target } = task.instance();
    const q = rotation!;
    expect(lambda[0]).toBeCloseTo(1, 6);
    expect(lambda[1]).toBeCloseTo(Math.sqrt(10), 5);
    expect(lambda[2]).toBeCloseTo(10, 5);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let dot = 0;
        for (let k = 0; k < 3; k++) dot += q[k * 3 + i]! * q[k * 3 + j]!;
        expect(Math.abs(dot - (i === j ? 1 : 0))).toBeLessThan(1e-6);
      }
    }
    const params = task.init([5, 6]);
    const batch = task.batches('train', [5, 6]).next();
    const got = read(tf.tidy(() => task.loss(params, batch)));
    const w = read(params.w!);
    for (let m = 0; m < 2; m++) {
      let want = 0;
      for (let i = 0; i < 3; i++) {
        let r = -target[i]!;
        for (let j = 0; j < 3; j++) r += q[i * 3 + j]! * w[m * 3 + j]!;
        want += 0.5 * lambda[i]! * r * r;
      }
      expect(relErr(got[m]!, want)).toBeLessThan(1e-5);
    }
    tf.dispose([Object.values(params), Object.values(batch)]);
  });

  it('quadratic (diagonal): ½ Σ λ_i (w − c)_i²; the instance is a function of the config only', () => {
    const task = quadraticTask({ dim: 4, condition: 1000, rotated: false });
    const { lambda, rotation, target } = task.instance();
    expect(rotation).toBeNull();
    expect(Array.from(quadraticTask({ dim: 4, condition: 1000, rotated: false }).instance().target)).toEqual(Array.from(target));
    const params = task.init([9]);
    const got = read(tf.tidy(() => task.loss(params, {})))[0]!;
    const w = read(params.w!);
    let want = 0;
    for (let i = 0; i < 4; i++) want += 0.5 * lambda[i]! * (w[i]! - target[i]!) ** 2;
    expect(relErr(got, want)).toBeLessThan(1e-5);
    tf.dispose(Object.values(params));
  });

  it('noisy quadratic: ½ Σ h_i (w_i − ξ_i)², h_i = 1/i', () => {
    const task = noisyQuadraticTask({ dim: 4, batchSize: 2 });
    const { curvature } = task.instance();
    expect(Array.from(curvature)).toEqual(Array.from(Float32Array.from([1, 1 / 2, 1 / 3, 1 / 4])));
    const params = task.init([1, 2]);
    const batch = task.batches('train', [1, 2]).next();
    const got = read(tf.tidy(() => task.loss(params, batch)));
    const w = read(params.w!);
    const xi = read(batch.xi!);
    for (let m = 0; m < 2; m++) {
      let want = 0;
      for (let i = 0; i < 4; i++) want += 0.5 * curvature[i]! * (w[m * 4 + i]! - xi[m * 4 + i]!) ** 2;
      expect(relErr(got[m]!, want)).toBeLessThan(1e-5);
    }
    tf.dispose([Object.values(params), Object.values(batch)]);
  });

  it('rosenbrock: Σ 100(x_{i+1} − x_i²)² + (1 − x_i)², start near (−1, 1, −1, …)', () => {
    const task = rosenbrockTask({ dim: 4 });
    expect(Array.from(rosenbrockStart(4))).toEqual([-1, 1, -1, 1]);
    expect(rosenbrockValue([-1, 1])).toBe(4);
    expect(rosenbrockValue([1, 1, 1])).toBe(0);
    const params = task.init([4, 8]);
    const got = read(tf.tidy(() => task.loss(params, {})));
    const x = read(params.x!);
    for (let m = 0; m < 2; m++) {
      const xm = x.slice(m * 4, m * 4 + 4);
      xm.forEach((v, i) => expect(Math.abs(v - rosenbrockStart(4)[i]!)).toBeLessThan(0.5));
      expect(relErr(got[m]!, rosenbrockValue(xm))).toBeLessThan(1e-5);
    }
    tf.dispose(Object.values(params));
  });

  it('logreg: mean softmax cross-entropy of x·W + b', () => {
    const task = logisticRegressionTask({ dim: 3, classes: 3, batchSize: 5, numPoints: 40 });
    const [d, c, bs] = [3, 3, 5];
    const params = task.init([2, 3]);
    const batch = task.batches('test', [2, 3]).next();
    const got = read(tf.tidy(() => task.loss(params, batch)));
    const [w, b, x, y] = [read(params.w!), read(params.b!), read(batch.x!), read(batch.y!)];
    for (let m = 0; m < 2; m++) {
      let want = 0;
      for (let k = 0; k < bs; k++) {
        const logits = Array.from({ length: c }, (_, j) => {
          let z = b[m * c + j]!;
          for (let i = 0; i < d; i++) z += x[(m * bs + k) * d + i]! * w[(m * d + i) * c + j]!;
          return z;
        });
        const top = Math.max(...logits);
        const lse = top + Math.log(logits.reduce((s, z) => s + Math.exp(z - top), 0));
        want += (lse - logits[y[m * bs + k]!]!) / bs;
      }
      expect(relErr(got[m]!, want)).toBeLessThan(1e-5);
    }
    // Labels come from the split's points (test: the last ⌊n/10⌋ = 4 of 40).
    const inst = task.instance();
    expect(inst.splits.test).toEqual({ start: 36, count: 4 });
    for (const label of y) expect(Array.from(inst.y.subarray(36, 40))).toContain(label);
    tf.dispose([Object.values(params), Object.values(batch)]);
  });
});

describe('noisy quadratic: gradient-noise variance scales as 1/B', () => {
  function noiseVariance(batchSize: number, firstSeed: number): number {
    const task = noisyQuadraticTask({ dim: 20, batchSize });
    const seeds = Array.from({ length: 100 }, (_, i) => firstSeed + i);
    const w = tf.zeros([seeds.length, 20]);
    const stream = task.batches('train', seeds);
    const samples: number[][] = [];
    for (let k = 0; k < 5; k++) {
      const batch = stream.next();
      const { value, grads } = lossAndGrads(task, { w }, batch);
      const g = read(grads[0]!);
      for (let m = 0; m < seeds.length; m++) samples.push(g.slice(m * 20, (m + 1) * 20));
      tf.dispose([value, grads, Object.values(batch)]);
    }
    w.dispose();
    // At w = 0 the gradient is pure noise −h·ξ: sum the per-coordinate sample variances.
    let total = 0;
    for (let i = 0; i < 20; i++) {
      const col = samples.map((s) => s[i]!);
      const mean = col.reduce((a, v) => a + v, 0) / col.length;
      total += col.reduce((a, v) => a + (v - mean) ** 2, 0) / (col.length - 1);
    }
    return total;
  }
  it('B = 16 vs B = 256: ratio ≈ 16 (within 20%), and Σ Var = Σ h_i / B', () => {
    // Disjoint seeds, so the ratio is measured, not the same draws rescaled.
    const v16 = noiseVariance(16, 0);
    const v256 = noiseVariance(256, 1000);
    expect(Math.abs(v16 / v256 / 16 - 1)).toBeLessThan(0.2);
    let traceH = 0;
    for (let i = 1; i <= 20; i++) traceH += 1 / i;
    expect(Math.abs(v16 / (traceH / 16) - 1)).toBeLessThan(0.15);
  });
});

describe('streams: splits differ, seeds decide', () => {
  it.each(['noisy-quadratic', 'logreg'] as const)('%s: train and test streams differ; equal seeds give equal batches', (kind) => {
    const task = small[kind]();
    const train = task.batches('train', [1, 1, 2]).next();
    const test = task.batches('test', [1, 1, 2]).next();
    const key = kind === 'logreg' ? 'x' : 'xi';
    const tr = train[key]!.arraySync() as unknown[];
    expect(tr[0]).toEqual(tr[1]);
    expect(tr[0]).not.toEqual(tr[2]);
    expect(tr[0]).not.toEqual((test[key]!.arraySync() as unknown[])[0]);
    tf.dispose([Object.values(train), Object.values(test)]);
  });
  it('deterministic tasks give [P] step placeholders', () => {
    const s = small.rosenbrock().batches('train', [4, 5, 6]);
    const a = s.next();
    const b = s.next();
    expect(a.step!.shape).toEqual([3]);
    expect(read(b.step!)).toEqual([1, 1, 1]);
    tf.dispose([a.step!, b.step!]);
  });
  it('empty seed lists are refused', () => {
    expect(() => small.quadratic().init([])).toThrow(/quadratic-d8-k100: seeds must hold one seed per member/);
  });
});

describe('normalizeLoss', () => {
  it('relative tasks: loss / expected initial loss, clipped to [0, 1.5], NaN/±Inf → 1.5', () => {
    const task = quadraticTask({ dim: 2, condition: 4, rotated: false });
    const { lambda, target } = task.instance();
    const l0 = 0.5 * (lambda[0]! * (1 + target[0]! ** 2) + lambda[1]! * (1 + target[1]! ** 2));
    const out = read(tf.tidy(() => task.normalizeLoss(tf.tensor1d([0, l0 / 2, l0, 100 * l0, NaN, Infinity, -Infinity, -1]))));
    const want = [0, 0.5, 1, 1.5, 1.5, 1.5, 1.5, 0];
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    expect(RELATIVE_LOSS_MAX).toBe(1.5);
    const nqm = noisyQuadraticTask({ dim: 2, batchSize: 4 });
    const nqm0 = 0.5 * (1 + 0.5) + (0.5 * 2) / 4;
    expect(read(tf.tidy(() => nqm.normalizeLoss(tf.tensor1d([nqm0, NaN]))))).toEqual([expect.closeTo(1, 5), 1.5]);
    const rosen = rosenbrockTask({ dim: 2 });
    expect(read(tf.tidy(() => rosen.normalizeLoss(tf.tensor1d([2, Infinity]))))).toEqual([0.5, 1.5]);
  });
  it('logreg: clip(l, 0, 1.5·ln C), NaN/Inf → 1.5·ln C', () => {
    const max = 1.5 * Math.log(3);
    const out = read(tf.tidy(() => small.logreg().normalizeLoss(tf.tensor1d([0.5, 10, NaN, Infinity, -Infinity]))));
    [0.5, max, max, max, max].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 5));
  });
});

describe('meta', () => {
  it('fills family, sp, width = dimension, batch size and parameter count; mupScale all 1', () => {
    const cases: [Task, string, number, number, number][] = [
      [small.quadratic(), 'quadratic', 8, 1, 8],
      [small['noisy-quadratic'](), 'noisy-quadratic', 10, 16, 10],
      [small.rosenbrock(), 'rosenbrock', 3, 1, 3],
      [small.logreg(), 'logreg', 5, 8, 18],
    ];
    for (const [task, family, width, batchSize, paramCount] of cases) {
      expect(task.meta).toMatchObject({ family, parametrization: 'sp', width, depth: null, batchSize, paramCount });
      expect(Object.values(task.mupScale).every((s) => s === 1)).toBe(true);
      expect(Object.keys(task.mupScale)).toEqual(Object.keys(task.shapes));
    }
  });
});

describe('canonical names', () => {
  it('build the documented strings and round-trip through parse', () => {
    expect(quadraticName({ dim: 100, condition: 1000 })).toBe('quadratic-d100-k1000');
    expect(noisyQuadraticName({ dim: 100, batchSize: 128 })).toBe('noisy-quadratic-d100-b128');
    expect(rosenbrockName({ dim: 2 })).toBe('rosenbrock-d2');
    expect(logisticRegressionName({ dim: 20, classes: 2, batchSize: 64 })).toBe('logreg-d20-c2-b64');
    const roundTrips: [string, (n: string) => object, (c: never) => string][] = [
      ['quadratic-d100-k1000', parseQuadraticName, quadraticName],
      ['quadratic-d3-k2.5-diag', parseQuadraticName, quadraticName],
      ['noisy-quadratic-d100-b128', parseNoisyQuadraticName, noisyQuadraticName],
      ['rosenbrock-d2', parseRosenbrockName, rosenbrockName],
      ['logreg-d20-c2-b64', parseLogisticRegressionName, logisticRegressionName],
      ['logreg-d20-c10-b1-n500', parseLogisticRegressionName, logisticRegressionName],
    ];
    for (const [name, parse, format] of roundTrips) expect(format(parse(name) as never)).toBe(name);
    expect(parseQuadraticName('quadratic-d100-k1000')).toEqual({ dim: 100, condition: 1000, rotated: true });
    expect(parseLogisticRegressionName('logreg-d20-c2-b64')).toEqual({ dim: 20, classes: 2, batchSize: 64, numPoints: 4096 });
    expect(small.logreg().meta.name).toBe('logreg-d5-c3-b8-n200');
  });
  it('refuse anything else, saying what is allowed', () => {
    expect(() => parseQuadraticName('quadratic-d100')).toThrow(
      "quadratic: 'quadratic-d100' is not a valid quadratic task name; expected quadratic-d<dim>-k<condition>[-diag]",
    );
    expect(() => parseQuadraticName('quadratic-d100-k1e3')).toThrow(/not a valid quadratic task name/);
    expect(() => parseQuadraticName('quadratic-d0-k10')).toThrow(/config field 'dim' must be an integer >= 1; got 0/);
    expect(() => parseQuadraticName('quadratic-d10-k0.5')).toThrow(/config field 'condition' must be a finite number >= 1; got 0.5/);
    expect(() => parseNoisyQuadraticName('noisy-quadratic-d010-b4')).toThrow(/expected noisy-quadratic-d<dim>-b<batchSize>/);
    expect(() => parseRosenbrockName('rosenbrock-d1')).toThrow(/config field 'dim' must be an integer >= 2; got 1/);
    expect(() => parseLogisticRegressionName('logreg-d20-c2-b64-n4096')).toThrow(/expected logreg-d<dim>-c<classes>-b<batchSize>\[-n<numPoints>\]/);
    expect(() => parseLogisticRegressionName('mlp-mnist')).toThrow(/not a valid logreg task name/);
  });
});

describe('bad configs are refused before any work', () => {
  it.each([
    [() => quadraticTask({ dim: 0, condition: 10 }), "quadratic: config field 'dim' must be an integer >= 1; got 0"],
    [() => quadraticTask({ dim: 2.5, condition: 10 }), "quadratic: config field 'dim' must be an integer >= 1; got 2.5"],
    [() => quadraticTask({ dim: 4, condition: 0.5 }), "quadratic: config field 'condition' must be a finite number >= 1; got 0.5"],
    [() => quadraticTask({ dim: 4, condition: NaN }), "quadratic: config field 'condition' must be a finite number >= 1; got NaN"],
    [() => quadraticTask({ dim: 4, condition: 10, rotated: 'yes' as never }), "quadratic: config field 'rotated' must be true or false; got 'yes'"],
    [() => quadraticTask({ dim: 4, kappa: 10 } as never), "quadratic: unknown config field 'kappa'; allowed fields: dim, condition, rotated"],
    [() => noisyQuadraticTask({ dim: 4, batchSize: 0 }), "noisy-quadratic: config field 'batchSize' must be an integer >= 1; got 0"],
    [() => noisyQuadraticTask({ dim: -3, batchSize: 8 }), "noisy-quadratic: config field 'dim' must be an integer >= 1; got -3"],
    [() => rosenbrockTask({ dim: 1 }), "rosenbrock: config field 'dim' must be an integer >= 2; got 1"],
    [() => rosenbrockTask(null as never), 'rosenbrock: config must be an object with fields dim; got null'],
    [() => logisticRegressionTask({ dim: 4, classes: 1, batchSize: 8 }), "logreg: config field 'classes' must be an integer >= 2; got 1"],
    [() => logisticRegressionTask({ dim: 4, classes: 2, batchSize: 0 }), "logreg: config field 'batchSize' must be an integer >= 1; got 0"],
    [() => logisticRegressionTask({ dim: 4, classes: 2, batchSize: 8, numPoints: 9 }), "logreg: config field 'numPoints' must be an integer >= 10; got 9"],
  ] as [() => unknown, string][])('%#', (build, message) => {
    expect(build).toThrow(message);
  });
});

describe('no tensor growth over 1,000 loss+grad evaluations', () => {
  it.each(kinds)('%s', (kind) => {
    const task = small[kind]();
    const params = task.init([1, 2]);
    const stream = task.batches('train', [1, 2]);
    const once = () => {
      const batch = stream.next();
      const { value, grads } = tf.tidy(() => lossAndGrads(task, params, batch));
      const norm = tf.tidy(() => task.normalizeLoss(task.loss(params, batch)));
      tf.dispose([value, grads, norm, Object.values(batch)]);
    };
    once(); // lazily made constants (kept by the task) appear here
    const before = tf.memory().numTensors;
    for (let k = 0; k < 1000; k++) once();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(params));
  });
});
