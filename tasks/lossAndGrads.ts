// One training step's loss and gradient of a task for a whole population: the loss per member and
// the gradient of their sum (each member's parameters only touch its own loss).
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../src/tree/params.js';
import type { Batch, Task } from './types.js';

/** Loss per member [P] at `params` on `batch`, and its gradient per parameter tensor. The caller disposes both. */
export function lossAndGrads(task: Task, params: Params, batch: Batch): { losses: tf.Tensor1D; grads: Params } {
  const fused = task.lossAndGrads?.(params, batch);
  if (fused) return fused;
  const names = Object.keys(params);
  const P = params[names[0]!]!.shape[0]!;
  const ones = tf.ones([P]) as tf.Tensor1D;
  const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) => {
    const p: Params = {};
    names.forEach((n, i) => (p[n] = ws[i]!));
    return task.loss(p, batch);
  })(
    names.map((n) => params[n]!),
    ones,
  );
  ones.dispose();
  const g: Params = {};
  names.forEach((n, i) => (g[n] = grads[i]!));
  return { losses: value as tf.Tensor1D, grads: g };
}
