import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import { lossAndGrads } from '../../tasks/lossAndGrads.js';
import type { Batch, Split, Task } from '../../tasks/types.js';

/** Member i of a population tensor, keeping the population axis ([1, ...]). */
export function member(t: tf.Tensor, i: number): tf.Tensor {
  return tf.slice(t, [i], [1]);
}

function memberOf<T extends Record<string, tf.Tensor>>(tree: T, i: number): T {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(tree)) out[k] = member(t, i);
  return out as T;
}

/** Independent of tasks/lossAndGrads.ts (its own tf.sum gradient), read back as arrays. */
function lossAndGradsArrays(task: Task, params: Params, batch: Batch): { loss: Float32Array; grads: Record<string, Float32Array> } {
  const names = Object.keys(params);
  const { value, grads } = tf.tidy(() =>
    tf.valueAndGrads((...ws: tf.Tensor[]) => {
      const p: Params = {};
      names.forEach((n, i) => (p[n] = ws[i]!));
      return tf.sum(task.loss(p, batch)) as tf.Scalar;
    })(names.map((n) => params[n]!)),
  );
  const perMember = tf.tidy(() => task.loss(params, batch));
  const out = { loss: perMember.dataSync() as Float32Array, grads: {} as Record<string, Float32Array> };
  names.forEach((n, i) => (out.grads[n] = grads[i]!.dataSync() as Float32Array));
  tf.dispose([value, grads, perMember]);
  return out;
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>, atol: number): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + atol));
  return worst;
}

/**
 * The P-batched loss and gradient equal P separate single-member evaluations (returns the worst
 * relative error found, to compare against a tolerance), and member i's init depends on seeds[i] only.
 */
export function populationVsSingles(task: Task, seeds: number[], split: Split = 'train', atol = 1e-4): number {
  const params = task.init(seeds);
  const stream = task.batches(split, seeds);
  const batch = stream.next();
  const all = lossAndGradsArrays(task, params, batch);
  let worst = 0;
  seeds.forEach((seed, i) => {
    const p = memberOf(params, i);
    const b = memberOf(batch, i);
    const one = lossAndGradsArrays(task, p, b);
    worst = Math.max(worst, maxRelErr(all.loss.subarray(i, i + 1), one.loss, atol));
    for (const [name, g] of Object.entries(one.grads)) {
      worst = Math.max(worst, maxRelErr(all.grads[name]!.subarray(i * g.length, (i + 1) * g.length), g, atol));
    }
    // Member i's parameters and data depend on its own seed only.
    const alone = task.init([seed]);
    for (const [name, t] of Object.entries(alone)) {
      worst = Math.max(worst, maxRelErr(p[name]!.dataSync(), t.dataSync(), atol));
    }
    const aloneBatch = task.batches(split, [seed]).next();
    for (const [name, t] of Object.entries(aloneBatch)) {
      worst = Math.max(worst, maxRelErr(b[name]!.dataSync(), t.dataSync(), atol));
    }
    tf.dispose([Object.values(p), Object.values(b), Object.values(alone), Object.values(aloneBatch)]);
  });
  tf.dispose([Object.values(params), Object.values(batch)]);
  return worst;
}

/**
 * Trains one member with Adam on the train split for `steps` steps; returns the first and the
 * mean of the last 5 training losses. `muP` uses μAdam with the task's mupScale instead.
 */
export async function trainWithAdam(task: Task, steps: number, learningRate: number, seed = 1, muP = false): Promise<{ first: number; last: number }> {
  const { adam, muadam } = await import('../../src/optim/baselines/adam.js');
  const opt = muP ? muadam({ learningRate, mupScale: { ...task.mupScale } }) : adam({ learningRate });
  let params = task.init([seed]);
  let state = opt.init(params);
  const stream = task.batches('train', [seed]);
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const batch = stream.next();
    const { losses: value, grads } = lossAndGrads(task, params, batch);
    losses.push(value.dataSync()[0]!);
    ({ params, state } = opt.step(params, grads, state));
    tf.dispose([value, Object.values(grads), Object.values(batch)]);
  }
  tf.dispose(Object.values(params));
  tf.dispose(state.inner as tf.TensorContainer);
  const tail = losses.slice(-5);
  return { first: losses[0]!, last: tail.reduce((a, b) => a + b, 0) / tail.length };
}
