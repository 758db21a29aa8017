import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../../src/optim/optimizer.js';
import type { UpdateContext } from '../../src/optim/transform.js';
import { disposeParams, type Params } from '../../src/tree/params.js';
import { medianMs, settle } from './timing.js';

/** A ~1M-parameter tree shaped like an MLP 784-1024-256-10 (plus biases). */
export function millionParamTree(seed: number): Params {
  return {
    'l0/kernel': tf.randomNormal([784, 1024], 0, 0.05, 'float32', seed),
    'l0/bias': tf.zeros([1024]),
    'l1/kernel': tf.randomNormal([1024, 256], 0, 0.05, 'float32', seed + 1),
    'l1/bias': tf.zeros([256]),
    'l2/kernel': tf.randomNormal([256, 10], 0, 0.05, 'float32', seed + 2),
    'l2/bias': tf.zeros([10]),
  };
}

/** Median ms of one optimizer step (update + apply) on a fresh millionParamTree with fixed `grads` (and `context`, e.g. the loss VeLO reads). */
export function optimizerStepMs(opt: Optimizer, grads: Params, reps: number, warmup = 3, context?: UpdateContext): number {
  let params = millionParamTree(1);
  let state = opt.init(params);
  const ms = medianMs(
    () => {
      ({ params, state } = opt.step(params, grads, state, context));
      settle(Object.values(params));
    },
    reps,
    warmup,
  );
  disposeParams(params);
  tf.dispose(state.inner as tf.TensorContainer);
  return ms;
}
