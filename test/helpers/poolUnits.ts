// Units for test/unitPool.test.ts, run by the unit pool in this thread (workers = 0) or, as
// dist/test/helpers/poolUnits.js, in worker threads.
import { existsSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

export interface MatmulInput {
  /** m×k and k×n, row-major. */
  a: Float32Array;
  b: Float32Array;
  m: number;
  k: number;
  n: number;
  seed: number;
  /** Extra n×n products with a seeded random matrix, to make the unit heavier. */
  reps: number;
}

export interface MatmulOutput {
  out: Float32Array;
  /** Nested, to check that nested typed arrays survive (and are moved). */
  stats: { rowSums: Float32Array; reps: number };
}

/** The units of this module, by kind (a UnitTable). */
export const units = {
  matmul: (input: MatmulInput): MatmulOutput => matmul(input),
  throw: (input: { message: string }): never => {
    throw new Error(`unit asked to throw: ${input.message}`);
  },
  crash: ({ marker }: { marker: string }): { survived: boolean } => {
    if (!existsSync(marker)) {
      writeFileSync(marker, 'crashed once\n');
      process.exit(1);
    }
    return { survived: true };
  },
  'crash-always': (_input: Record<string, never>): never => process.exit(3),
};

export type PoolUnits = typeof units;

function matmul({ a, b, m, k, n, seed, reps }: MatmulInput): MatmulOutput {
  const [out, rowSums] = tf.tidy(() => {
    const w = tf.randomNormal([n, n], 0, 1 / Math.sqrt(n), 'float32', seed);
    let c = tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n]));
    for (let r = 0; r < reps; r++) c = tf.tanh(tf.matMul(c, w));
    return [c, tf.sum(c, 1)];
  });
  const result = { out: out.dataSync() as Float32Array, stats: { rowSums: rowSums.dataSync() as Float32Array, reps } };
  out.dispose();
  rowSums.dispose();
  return result;
}
