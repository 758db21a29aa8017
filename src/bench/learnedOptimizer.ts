// μLO step cost on a ~1M-parameter MLP tree: wall time, the per-parameter MLP's FLOP rate as a
// fraction of the 2-D matMul rate for the same shapes (measured in the same run), and the ratio
// to Adam's step.
import * as tf from '@tensorflow/tfjs-core';
import { smallFcLopt, SMALL_FC_FEATURES } from '../lopt/smallFcLopt.js';
import { OPTIMIZERS } from '../optim/registry.js';
import { disposeParams, parameterCount } from '../tree/params.js';
import { millionParamTree, optimizerStepMs } from './optimizerStep.js';
import type { BenchRow } from './row.js';
import { medianMs, settle } from './timing.js';

/** The three 2-D products of the per-parameter MLP over n parameters, untransposed (the fast form). */
function matMulMs(n: number, hidden: number, reps: number): number {
  const x = tf.randomNormal([n, SMALL_FC_FEATURES], 0, 1, 'float32', 5);
  const h = tf.randomNormal([n, hidden], 0, 1, 'float32', 6);
  const w0 = tf.randomNormal([SMALL_FC_FEATURES, hidden], 0, 1, 'float32', 7);
  const w1 = tf.randomNormal([hidden, hidden], 0, 1, 'float32', 8);
  const w2 = tf.randomNormal([hidden, 2], 0, 1, 'float32', 9);
  const ms = medianMs(() => {
    const out = [tf.matMul(x, w0), tf.matMul(h, w1), tf.matMul(h, w2)];
    settle(out);
    tf.dispose(out);
  }, reps, 2);
  tf.dispose([x, h, w0, w1, w2]);
  return ms;
}

export function benchLearnedOptimizer(reps = 5): BenchRow[] {
  const lo = smallFcLopt();
  const hidden = lo.config['hiddenSize'] as number;
  const theta = lo.initTheta(0);
  const grads = millionParamTree(100);
  const n = parameterCount(grads);
  const mulo = optimizerStepMs(lo.optimizer(theta, { mupScale: (_name, s) => (s.length === 2 ? 1 / s[0]! : 1) }), grads, reps, 2);
  const adam = optimizerStepMs(OPTIMIZERS.adam({}), grads, reps, 2);
  // Nominal per-parameter MLP work with 39 inputs, counted the same way for the step and for the
  // reference products (the step folds the 11 time features into a bias, so it does less).
  const flopsPerParam = 2 * (SMALL_FC_FEATURES * hidden + hidden * hidden + hidden * 2);
  const flops = flopsPerParam * n;
  const mm = matMulMs(n, hidden, reps);
  const matMulRate = flops / (mm / 1e3);
  const achieved = flops / (mulo / 1e3);
  const fraction = achieved / matMulRate;
  disposeParams(theta);
  disposeParams(grads);
  return [
    {
      name: `μLO step (${(n / 1e6).toFixed(2)}M params, hidden ${hidden})`,
      value: mulo,
      goal: 'informational (ms)',
      ok: true,
      detail: `${(flopsPerParam / 1e3).toFixed(2)} kFLOP/param MLP; ${(achieved / 1e9).toFixed(2)} GFLOP/s`,
    },
    {
      name: 'μLO MLP FLOP rate / 2-D matMul rate (same shapes)',
      value: fraction,
      goal: '>= 0.6',
      ok: fraction >= 0.6,
      detail: `matMul ${(matMulRate / 1e9).toFixed(2)} GFLOP/s (${mm.toFixed(1)} ms for the MLP's products)`,
    },
    { name: 'μLO step / Adam step', value: mulo / adam, goal: 'informational', ok: true, detail: `adam ${adam.toFixed(1)} ms` },
  ];
}
