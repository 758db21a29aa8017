import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../src/random/rng.js';

/**
 * Normal samples with std `std`, redrawn outside ±2σ (truncated, not rescaled — the reference's
 * truncated_normal init), from a seeded stream.
 */
export function truncatedNormalValues(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = rng.normal();
    while (Math.abs(z) > 2) z = rng.normal();
    out[i] = z * std;
  }
  return out;
}

export function normalValues(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

export type InitRule = { kind: 'truncatedNormal'; std: number } | { kind: 'normal'; std: number } | { kind: 'zeros' };

/**
 * Stacks one tensor per member: member i's values come from Rng.from(seeds[i]).fork(name), so a
 * member's init depends on its own seed only (and not on the other tensors' sizes).
 */
export function initPopulation(
  seeds: readonly number[],
  shapes: Readonly<Record<string, readonly number[]>>,
  rules: Readonly<Record<string, InitRule>>,
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const rule = rules[name];
    if (!rule) throw new Error(`initPopulation: no init rule for '${name}'`);
    const n = shape.reduce((p, d) => p * d, 1);
    const values = new Float32Array(n * seeds.length);
    seeds.forEach((seed, i) => {
      if (rule.kind === 'zeros') return;
      const rng = Rng.from(seed).fork(`init/${name}`);
      values.set(rule.kind === 'normal' ? normalValues(rng, n, rule.std) : truncatedNormalValues(rng, n, rule.std), i * n);
    });
    out[name] = tf.tensor(values, [seeds.length, ...shape]);
  }
  return out;
}
