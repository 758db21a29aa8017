import * as tf from '@tensorflow/tfjs-core';
import { OPTIMIZERS, type OptimizerName } from '../optim/registry.js';
import type { Optimizer } from '../optim/optimizer.js';
import { disposeParams, parameterCount, type Params } from '../tree/params.js';
import type { BenchRow } from './row.js';
import { medianMs, settle } from './timing.js';

/** A ~1M-parameter tree shaped like an MLP 784-1024-256-10 (plus biases). */
function tree(seed: number): Params {
  return {
    'l0/kernel': tf.randomNormal([784, 1024], 0, 0.05, 'float32', seed),
    'l0/bias': tf.zeros([1024]),
    'l1/kernel': tf.randomNormal([1024, 256], 0, 0.05, 'float32', seed + 1),
    'l1/bias': tf.zeros([256]),
    'l2/kernel': tf.randomNormal([256, 10], 0, 0.05, 'float32', seed + 2),
    'l2/bias': tf.zeros([10]),
  };
}

const make: Record<OptimizerName, () => Optimizer> = {
  sgd: () => OPTIMIZERS.sgd({ learningRate: 0.01 }),
  momentum: () => OPTIMIZERS.momentum({ learningRate: 0.01 }),
  nesterov: () => OPTIMIZERS.nesterov({ learningRate: 0.01 }),
  adam: () => OPTIMIZERS.adam({}),
  adamw: () => OPTIMIZERS.adamw({}),
  muadam: () => OPTIMIZERS.muadam({ mupScale: (_n, s) => (s.length === 2 ? 1 / s[0]! : 1) }),
  lars: () => OPTIMIZERS.lars({ learningRate: 0.1, weightDecay: 1e-4, excludeFromWeightDecay: ['bias'], excludeFromTrustRatio: ['bias'] }),
  lamb: () => OPTIMIZERS.lamb({ weightDecay: 0.01, excludeFromWeightDecay: ['bias'] }),
  tvlars: () => OPTIMIZERS.tvlars({ learningRate: 0.1, weightDecay: 1e-4, excludeFromWeightDecay: ['bias'] }),
};

/** Time of one optimizer step (update + apply) for each optimizer, as a ratio to SGD's, in one run. */
export function benchOptimizerSteps(reps = 15): BenchRow[] {
  const grads = tree(100);
  const ms: Partial<Record<OptimizerName, number>> = {};
  let n = 0;
  for (const name of Object.keys(make) as OptimizerName[]) {
    const opt = make[name]();
    let params = tree(1);
    n = parameterCount(params);
    let state = opt.init(params);
    ms[name] = medianMs(() => {
      ({ params, state } = opt.step(params, grads, state));
      settle(Object.values(params));
    }, reps);
    disposeParams(params);
    tf.dispose(state.inner as tf.TensorContainer);
  }
  disposeParams(grads);
  const sgd = ms.sgd!;
  const rows: BenchRow[] = (Object.keys(ms) as OptimizerName[]).map((name) => ({
    name: `optimizer step ${name} / sgd (${(n / 1e6).toFixed(2)}M params)`,
    value: ms[name]! / sgd,
    goal: 'informational',
    ok: true,
    detail: `${ms[name]!.toFixed(2)} ms`,
  }));
  for (const name of ['lamb', 'lars', 'tvlars'] as const) {
    const r = ms[name]! / ms.adam!;
    rows.push({ name: `optimizer step ${name} / adam`, value: r, goal: '<= 2', ok: r <= 2 });
  }
  return rows;
}
