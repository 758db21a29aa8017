import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPTIMIZERS, type OptimizerName } from '../src/optim/registry.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import type { Params } from '../src/tree/params.js';
import { mismatch } from './helpers/reference.js';
import { useBackend } from './helpers/backend.js';

beforeAll(async () => {
  await useBackend('wasm');
});

const P = 3;
const shapes: Record<string, number[]> = { 'fc/kernel': [4, 3], 'fc/bias': [3], 'out/kernel': [3, 2] };
const common = { clipGlobalNorm: 0.5, excludeFromWeightDecay: ['bias'] };
// MKOR reads layer statistics besides gradients: its own tests (test/mkor.test.ts) cover leaks and populations.
type GradientOnly = Exclude<OptimizerName, 'mkor' | 'mkorlamb'>;
const make: Record<GradientOnly, (population?: number) => Optimizer> = {
  sgd: (population) => OPTIMIZERS.sgd({ learningRate: 0.1, weightDecay: 0.01, ...common, ...(population ? { population } : {}) }),
  momentum: (population) => OPTIMIZERS.momentum({ learningRate: 0.1, ...common, ...(population ? { population } : {}) }),
  nesterov: (population) => OPTIMIZERS.nesterov({ learningRate: 0.1, ...common, ...(population ? { population } : {}) }),
  adam: (population) => OPTIMIZERS.adam({ learningRate: 0.01, weightDecay: 0.01, ...common, ...(population ? { population } : {}) }),
  adamw: (population) => OPTIMIZERS.adamw({ learningRate: 0.01, ...common, ...(population ? { population } : {}) }),
  muadam: (population) =>
    OPTIMIZERS.muadam({
      learningRate: 0.01,
      mupScale: { 'fc/kernel': 1, 'fc/bias': 1, 'out/kernel': 1 / 3 },
      clipGlobalNorm: 0.5,
      ...(population ? { population } : {}),
    }),
  lars: (population) =>
    OPTIMIZERS.lars({ learningRate: 1, weightDecay: 0.01, excludeFromTrustRatio: ['bias'], ...common, ...(population ? { population } : {}) }),
  lamb: (population) => OPTIMIZERS.lamb({ learningRate: 0.01, weightDecay: 0.01, ...common, ...(population ? { population } : {}) }),
  tvlars: (population) => OPTIMIZERS.tvlars({ learningRate: 1, lambda: 0.1, ...common, ...(population ? { population } : {}) }),
};

/** Member i's tensors, seeded by i (so members differ in scale too: norms and clipping matter). */
function memberTree(i: number, seed: number): Params {
  const out: Params = {};
  Object.entries(shapes).forEach(([name, s], j) => (out[name] = tf.mul(tf.randomNormal(s, 0, 1, 'float32', seed + 10 * i + j), i + 1)));
  return out;
}

function run(opt: Optimizer, params: Params, grads: Params[]): Params {
  let state = opt.init(params);
  let p = params;
  for (const g of grads) ({ params: p, state } = opt.step(p, g, state));
  tf.dispose(state.inner as tf.TensorContainer);
  return p;
}

describe('baselines with a population axis', () => {
  it.each(Object.keys(make) as GradientOnly[])('%s: P stacked members step exactly as P separate runs', (name) => {
    const steps = 3;
    const singles = Array.from({ length: P }, (_, i) =>
      run(
        make[name](),
        memberTree(i, 1),
        Array.from({ length: steps }, (_, k) => memberTree(i, 100 + k)),
      ),
    );
    const stack = (trees: Params[]) => {
      const out: Params = {};
      for (const n of Object.keys(shapes)) out[n] = tf.stack(trees.map((t) => t[n]!));
      return out;
    };
    const batched = run(
      make[name](P),
      stack(Array.from({ length: P }, (_, i) => memberTree(i, 1))),
      Array.from({ length: steps }, (_, k) => stack(Array.from({ length: P }, (_, i) => memberTree(i, 100 + k)))),
    );
    for (const n of Object.keys(shapes)) {
      const want = singles.flatMap((s) => Array.from(s[n]!.dataSync()));
      expect(mismatch(batched[n]!.dataSync(), want, 1e-5, 1e-6), `${name} ${n}`).toBeNull();
    }
  });

  it('refuses parameters whose first dim is not the population', () => {
    const opt = make.lamb(4);
    expect(() => opt.init({ w: tf.zeros([3, 2]) })).toThrow("lamb: option 'population' is 4, but parameter 'w' has shape [3,2] (its first dim must be 4)");
    expect(() => OPTIMIZERS.adam({ population: 0 })).toThrow("adam: option 'population' must be an integer >= 1; got 0");
  });
});
