// Meta-parameter helpers shared by the learned optimizers: initialization, validation, stacking.
import * as tf from '@tensorflow/tfjs-core';
import { printable } from '../checkpoint/error.js';
import type { Rng } from '../random/rng.js';
import type { Params } from '../tree/params.js';

const shapeText = (s: readonly number[]) => `[${s.join(',')}]`;

/**
 * Truncated normal with nominal std `std`: standard normals redrawn outside ±2, then scaled by std
 * (not rescaled to unit variance after truncation, as haiku's TruncatedNormal).
 */
export function truncatedNormal(rng: Rng, shape: readonly number[], std: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = rng.normal();
    while (Math.abs(z) > 2) z = rng.normal();
    values[i] = z * std;
  }
  return tf.tensor(values, shape.slice(), 'float32');
}

/**
 * Checks that theta holds exactly the expected names and shapes (with a leading population axis
 * when `population` is given), float32 tensors. Throws a message naming the first problem.
 */
export function validateTheta(arch: string, theta: Params, shapes: Readonly<Record<string, readonly number[]>>, population: number | undefined): void {
  if (typeof theta !== 'object' || theta === null) throw new Error(`${arch}: theta must be a map of tensors`);
  if (population !== undefined && (!Number.isInteger(population) || population < 1)) {
    throw new Error(`${arch}: population must be a positive integer; got ${String(population)}`);
  }
  for (const name of Object.keys(theta)) {
    if (!(name in shapes)) {
      throw new Error(`${arch}: unknown meta-parameter '${name}' (expected: ${Object.keys(shapes).join(', ')})`);
    }
  }
  for (const [name, shape] of Object.entries(shapes)) {
    const t = theta[name];
    if (!(t instanceof tf.Tensor)) throw new Error(`${arch}: meta-parameter '${name}' is missing or not a tensor`);
    const want = population === undefined ? shape : [population, ...shape];
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new Error(`${arch}: meta-parameter '${name}' has shape ${shapeText(t.shape)}, expected ${shapeText(want)}`);
    }
    if (t.dtype !== 'float32') throw new Error(`${arch}: meta-parameter '${name}' must be float32, got ${t.dtype}`);
  }
}

/** P thetas stacked member-wise into one population theta [P, ...]. */
export function stackThetas(thetas: readonly Params[]): Params {
  const first = thetas[0];
  if (first === undefined) throw new Error('stackThetas: no thetas given');
  const out: Params = {};
  for (const name of Object.keys(first)) {
    out[name] = tf.stack(
      thetas.map((t, i) => {
        const x = t[name];
        if (x === undefined) throw new Error(`stackThetas: theta ${i} has no '${name}'`);
        return x;
      }),
    );
  }
  return out;
}

/** What a config key may hold: a boolean, or a finite number within a range (ends included unless said). */
export type ConfigRule = 'boolean' | { type: 'number'; min: number; max: number; integer?: boolean; minExclusive?: boolean };

/**
 * Validates a JSON config (a checkpoint's, a recipe's, or a caller's) against allowed keys, types
 * and ranges; unknown keys are errors, and every error names the key and what is allowed.
 */
export function checkConfig(arch: string, config: Record<string, unknown>, allowed: Record<string, ConfigRule>): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error(`${arch}: config must be an object`);
  }
  for (const [key, value] of Object.entries(config)) {
    const rule = allowed[key];
    if (rule === undefined) {
      throw new Error(`${arch}: unknown config key '${printable(key, 40)}' (allowed: ${Object.keys(allowed).join(', ')})`);
    }
    if (value === undefined) continue;
    if (rule === 'boolean') {
      if (typeof value !== 'boolean')
        throw new Error(`${arch}: config '${key}' must be a boolean; got ${printable(JSON.stringify(value) ?? String(value), 40)}`);
      continue;
    }
    const range = `${rule.minExclusive ? '(' : '['}${rule.min}, ${rule.max}]`;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (rule.minExclusive ? value > rule.min : value >= rule.min) &&
      value <= rule.max &&
      (!rule.integer || Number.isInteger(value));
    if (!ok) {
      throw new Error(
        `${arch}: config '${key}' must be ${rule.integer ? 'an integer' : 'a number'} in ${range}; got ${printable(JSON.stringify(value) ?? String(value), 40)}`,
      );
    }
  }
}
