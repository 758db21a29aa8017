// applyIfFinite (optax.apply_if_finite): a step with a NaN/Inf gradient is skipped — zero updates,
// inner state kept — at most maxConsecutiveErrors times in a row, then applied anyway.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import type { OptimizerState } from '../src/optim/optimizer.js';
import { createOptimizer, OPTIMIZERS, READS_LAYER_STATISTICS, type OptimizerName } from '../src/optim/registry.js';
import type { ApplyIfFiniteState } from '../src/optim/transforms/applyIfFinite.js';
import { disposeParams, type Params } from '../src/tree/params.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const params = (): Params => ({
  w: tf.tensor2d([
    [0.5, -1],
    [2, 0.25],
  ]),
  b: tf.tensor1d([0.1, -0.2]),
});
const grads = (s: number, bad = false): Params => ({
  w: tf.tensor2d([
    [0.1 * s, bad ? Number.NaN : -0.2],
    [0.3, 0.05 * s],
  ]),
  b: tf.tensor1d([bad ? Number.POSITIVE_INFINITY : 0.01, -0.02 * s]),
});
const values = (p: Params) => Object.fromEntries(Object.entries(p).map(([k, t]) => [k, Array.from(t.dataSync())]));

describe('applyIfFinite', () => {
  it('skips non-finite steps exactly: the same parameters as plain Adam without those steps, counters as optax', () => {
    const guarded = createOptimizer('adam', { learningRate: 0.1, applyIfFinite: 2 });
    const plain = createOptimizer('adam', { learningRate: 0.1 });
    let pg = params();
    let pp = params();
    let sg: OptimizerState = guarded.init(pg);
    let sp: OptimizerState = plain.init(pp);
    const counters = () => {
      const s = sg.inner as unknown as ApplyIfFiniteState;
      return [s.notfiniteCount, s.lastFinite, s.totalNotfinite];
    };
    const seq = [false, true, false, true, true, false];
    const expected = [
      [0, 1, 0],
      [1, 0, 1],
      [0, 1, 1],
      [1, 0, 2],
      [2, 0, 3],
      [0, 1, 3],
    ];
    seq.forEach((bad, s) => {
      const g = grads(s + 1, bad);
      const before = values(pg);
      ({ params: pg, state: sg } = guarded.step(pg, g, sg));
      expect(counters(), `step ${s}`).toEqual(expected[s]);
      if (bad) expect(values(pg), `step ${s} skipped`).toEqual(before);
      else ({ params: pp, state: sp } = plain.step(pp, g, sp));
      disposeParams(g);
    });
    expect(values(pg)).toEqual(values(pp));
    disposeParams(pg);
    disposeParams(pp);
  });

  it('gives up after maxConsecutiveErrors skips and applies the non-finite step (as optax)', () => {
    const opt = createOptimizer('sgd', { learningRate: 0.1, applyIfFinite: 1 });
    let p = params();
    let s = opt.init(p);
    const g = grads(1, true);
    ({ params: p, state: s } = opt.step(p, g, s)); // skipped (1 ≤ 1)
    expect(values(p)['w']!.every(Number.isFinite)).toBe(true);
    ({ params: p, state: s } = opt.step(p, g, s)); // 2 > 1: applied
    expect(values(p)['w']!.some(Number.isNaN)).toBe(true);
    expect((s.inner as unknown as ApplyIfFiniteState).notfiniteCount).toBe(2);
    disposeParams(g);
    disposeParams(p);
  });

  it('every baseline takes it by option, and a skipped step leaves no tensors behind', () => {
    // MKOR also reads the layer's rows when its own update count says so: a skipped step does not
    // count, so the good step after it is again a refresh and asks for them.
    const statistics = { w: { inputs: tf.tensor2d([0.3, -0.1, 0.7, 0.2], [2, 2]), outputGrads: tf.tensor2d([0.05, -0.02, 0.01, 0.04], [2, 2]) } };
    for (const name of Object.keys(OPTIMIZERS)) {
      const extra =
        name === 'muadam'
          ? { mupScale: { w: 0.5, b: 1 } }
          : READS_LAYER_STATISTICS.has(name as OptimizerName)
            ? { layers: [{ kernel: 'w', bias: 'b', kind: 'dense' }] }
            : {};
      const opt = createOptimizer(name, { learningRate: 0.1, applyIfFinite: 3, ...extra });
      const context = (s: OptimizerState) => (opt.wantsLayerStatistics(s) ? { layerStatistics: statistics } : {});
      let p = params();
      let s = opt.init(p);
      const bad = grads(1, true);
      const before = tf.memory().numTensors;
      const start = values(p);
      ({ params: p, state: s } = opt.step(p, bad, s, context(s)));
      expect(values(p), name).toEqual(start);
      expect(tf.memory().numTensors, name).toBe(before);
      if (READS_LAYER_STATISTICS.has(name as OptimizerName)) expect(opt.wantsLayerStatistics(s), name).toBe(true);
      const good = grads(1);
      ({ params: p, state: s } = opt.step(p, good, s, context(s)));
      expect(values(p)['w'], name).not.toEqual(start['w']);
      disposeParams(bad);
      disposeParams(good);
      disposeParams(p);
      tf.dispose(s.inner as tf.TensorContainer);
    }
    tf.dispose([statistics.w.inputs, statistics.w.outputGrads]);
  });

  it('refuses bad values, naming the option and what is allowed', () => {
    expect(() => createOptimizer('adam', { applyIfFinite: -1 })).toThrow(/applyIfFinite.*an integer >= 0/);
    expect(() => createOptimizer('lamb', { applyIfFinite: 1.5 })).toThrow(/applyIfFinite.*an integer >= 0/);
  });
});
