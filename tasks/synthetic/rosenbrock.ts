import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import type { Batch, Split, Task } from '../types.js';
import { relativeNormalizer } from './normalizers.js';
import { initRng, lazy, perMember, stepBatches } from './seeded.js';
import { parseCanonical, requireFields, requireInt, requireSeeds } from './validation.js';

const TASK = 'rosenbrock';

export interface RosenbrockConfig {
  /** N ≥ 2 coordinates. */
  dim: number;
}

/** Std of the per-member perturbation of the nominal start. */
export const ROSENBROCK_INIT_STD = 0.1;

/** The nominal start (−1, 1, −1, 1, …): the classic 2-D start, alternated in N dimensions. */
export function rosenbrockStart(dim: number): Float64Array {
  return Float64Array.from({ length: dim }, (_, i) => (i % 2 === 0 ? -1 : 1));
}

/** Σ_{i<N−1} [100(x_{i+1} − x_i²)² + (1 − x_i)²], in float64 (reference and normalizer scale). */
export function rosenbrockValue(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i + 1 < x.length; i++) {
    const a = x[i]!;
    const b = x[i + 1]!;
    s += 100 * (b - a * a) ** 2 + (1 - a) ** 2;
  }
  return s;
}

function checked(config: RosenbrockConfig): RosenbrockConfig {
  requireFields(TASK, config, ['dim']);
  return { dim: requireInt(TASK, 'dim', config.dim, 2) };
}

/** `rosenbrock-d<dim>`. */
export function rosenbrockName(config: RosenbrockConfig): string {
  return `rosenbrock-d${checked(config).dim}`;
}

export function parseRosenbrockName(name: string): RosenbrockConfig {
  return parseCanonical(
    name,
    TASK,
    'rosenbrock-d<dim>, e.g. rosenbrock-d2 (dim an integer >= 2)',
    /^rosenbrock-d(\d+)$/,
    ([d]) => checked({ dim: Number(d) }),
    rosenbrockName,
  );
}

/**
 * N-dimensional (chained) Rosenbrock, members x [P, N], x0 = (−1, 1, −1, …) + N(0, 0.1²) per member;
 * minimum 0 at (1, …, 1). Deterministic: batches are step placeholders.
 * Normalizer: f / f(nominal start), clipped to [0, 1.5], NaN/Inf → 1.5.
 */
export function rosenbrockTask(config: RosenbrockConfig): Task {
  const cfg = checked(config);
  const name = rosenbrockName(cfg);
  const n = cfg.dim;
  const start = rosenbrockStart(n);
  const initialLoss = lazy(() => rosenbrockValue(start));

  return {
    meta: { name, family: TASK, parametrization: 'sp', dataset: null, width: n, depth: null, batchSize: 1, paramCount: n },
    shapes: { x: [n] },
    mupScale: { x: 1 },
    init(seeds: readonly number[]): Params {
      requireSeeds(name, seeds);
      const values = perMember(seeds.map(initRng), n, (rng, out) => {
        for (let i = 0; i < n; i++) out[i] = start[i]! + ROSENBROCK_INIT_STD * rng.normal();
      });
      return { x: tf.tensor2d(values, [seeds.length, n]) };
    },
    loss(params: Params, _batch: Batch): tf.Tensor1D {
      const x = params.x;
      if (x === undefined) throw new Error(`${name}: params.x is missing`);
      return tf.tidy(() => {
        const p = x.shape[0]!;
        const a = tf.slice(x, [0, 0], [p, n - 1]);
        const b = tf.slice(x, [0, 1], [p, n - 1]);
        const valley = tf.mul(100, tf.square(tf.sub(b, tf.square(a))));
        const offset = tf.square(tf.sub(1, a));
        return tf.sum(tf.add(valley, offset), 1) as tf.Tensor1D;
      });
    },
    batches(_split: Split, seeds: readonly number[]) {
      requireSeeds(name, seeds);
      return stepBatches(seeds.length);
    },
    normalizeLoss: relativeNormalizer(initialLoss),
  };
}
