import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../../src/optim/optimizer.js';
import type { Params } from '../../src/tree/params.js';

/** Runs `steps` optimizer steps with gradients from `grad(params, k)`; returns each step's params as float arrays. */
export function trajectory(
  opt: Optimizer,
  init: Record<string, number[] | number[][]>,
  grad: (params: Record<string, Float32Array>, k: number) => Record<string, number[]>,
  steps: number,
): Record<string, number[]>[] {
  let params: Params = {};
  for (const [name, w] of Object.entries(init)) params[name] = tf.tensor(w);
  let state = opt.init(params);
  const out: Record<string, number[]>[] = [];
  for (let k = 0; k < steps; k++) {
    const values: Record<string, Float32Array> = {};
    for (const [name, p] of Object.entries(params)) values[name] = p.dataSync() as Float32Array;
    const g = grad(values, k);
    const grads: Params = {};
    for (const [name, p] of Object.entries(params)) grads[name] = tf.tensor(g[name]!, p.shape);
    ({ params, state } = opt.step(params, grads, state));
    tf.dispose(Object.values(grads));
    const snap: Record<string, number[]> = {};
    for (const [name, p] of Object.entries(params)) snap[name] = Array.from(p.dataSync());
    out.push(snap);
  }
  tf.dispose(Object.values(params));
  tf.dispose(state.inner as tf.TensorContainer);
  return out;
}

export const norm = (x: readonly number[]) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
