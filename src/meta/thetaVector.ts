// Theta as one flat float vector (what ES perturbs and the outer optimizer updates on the host),
// and back to named tensors, with or without a population of perturbed copies.
import * as tf from '@tensorflow/tfjs-core';
import type { LearnedOptimizer } from '../lopt/types.js';
import type { Params } from '../tree/params.js';

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Number of meta-parameters. */
export function thetaSize(lo: LearnedOptimizer): number {
  return Object.values(lo.thetaShapes).reduce((s, shape) => s + sizeOf(shape), 0);
}

/** Theta's tensors concatenated in thetaShapes order. */
export function flattenTheta(lo: LearnedOptimizer, theta: Params): Float32Array {
  const out = new Float32Array(thetaSize(lo));
  let off = 0;
  for (const [name, shape] of Object.entries(lo.thetaShapes)) {
    const t = theta[name];
    if (t === undefined) throw new Error(`${lo.arch}: theta has no '${name}'`);
    const data = t.dataSync() as Float32Array;
    if (data.length !== sizeOf(shape)) throw new Error(`${lo.arch}: theta '${name}' has ${data.length} values, expected ${sizeOf(shape)}`);
    out.set(data, off);
    off += data.length;
  }
  return out;
}

/** One theta from a flat vector. */
export function unflattenTheta(lo: LearnedOptimizer, flat: Float32Array): Params {
  const out: Params = {};
  let off = 0;
  for (const [name, shape] of Object.entries(lo.thetaShapes)) {
    const n = sizeOf(shape);
    out[name] = tf.tensor(flat.slice(off, off + n), shape.slice(), 'float32');
    off += n;
  }
  return out;
}

/** P thetas [P, n] (member-major) as tensors [P, ...shape] per name. */
export function unflattenThetas(lo: LearnedOptimizer, flat: Float32Array, P: number): Params {
  const n = thetaSize(lo);
  const out: Params = {};
  let off = 0;
  for (const [name, shape] of Object.entries(lo.thetaShapes)) {
    const size = sizeOf(shape);
    const values = new Float32Array(P * size);
    for (let m = 0; m < P; m++) values.set(flat.subarray(m * n + off, m * n + off + size), m * size);
    out[name] = tf.tensor(values, [P, ...shape], 'float32');
    off += size;
  }
  return out;
}
