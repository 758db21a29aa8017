import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import type { Batch, BatchStream, Split, Task } from '../types.js';
import { relativeNormalizer } from './normalizers.js';
import { batchRng, fillNormal, initRng, lazy, lazyConstant, perMember } from './seeded.js';
import { parseCanonical, requireFields, requireInt, requireSeeds } from './validation.js';

const TASK = 'noisy-quadratic';

/**
 * The noisy quadratic model (NQM) of Zhang et al. 2019, "Which algorithmic choices matter at which
 * batch sizes?": L(w) = ½ Σ h_i w_i², curvature h_i = 1/i (i = 1..d, their power-law spectrum),
 * and minibatch gradients Hw + ε with Cov(ε) = C/B where the per-example noise covariance C = H.
 */
export interface NoisyQuadraticConfig {
  dim: number;
  /** B: the gradient-noise variance is h_i·σ²/B (σ² = 1). */
  batchSize: number;
}

export interface NoisyQuadraticInstance {
  /** h_i = 1/(i+1), i = 0..d−1. */
  curvature: Float32Array;
  /** σ², the per-example noise scale (fixed at 1). */
  noiseVariance: number;
}

export interface NoisyQuadraticTask extends Task {
  instance(): NoisyQuadraticInstance;
}

const NOISE_VARIANCE = 1;

function checked(config: NoisyQuadraticConfig): NoisyQuadraticConfig {
  requireFields(TASK, config, ['dim', 'batchSize']);
  return {
    dim: requireInt(TASK, 'dim', config.dim, 1),
    batchSize: requireInt(TASK, 'batchSize', config.batchSize, 1),
  };
}

/** `noisy-quadratic-d<dim>-b<batchSize>`. */
export function noisyQuadraticName(config: NoisyQuadraticConfig): string {
  const c = checked(config);
  return `noisy-quadratic-d${c.dim}-b${c.batchSize}`;
}

export function parseNoisyQuadraticName(name: string): NoisyQuadraticConfig {
  return parseCanonical(
    name,
    TASK,
    'noisy-quadratic-d<dim>-b<batchSize>, e.g. noisy-quadratic-d100-b128 (integers >= 1)',
    /^noisy-quadratic-d(\d+)-b(\d+)$/,
    ([d, b]) => checked({ dim: Number(d), batchSize: Number(b) }),
    noisyQuadraticName,
  );
}

/**
 * The NQM as a loss over sampled targets: loss = ½ Σ h_i (w_i − ξ_i)², ξ_i ~ N(0, σ²/(h_i·B)) from
 * the batch stream ({ xi: [P, d] }). Its gradient h_i(w_i − ξ_i) is Hw plus noise of variance
 * h_i²·σ²/(h_i·B) = h_i·σ²/B, i.e. Cov = H/B as in the paper; the expected loss is the NQM loss plus
 * the constant ½·d·σ²/B. Members: w [P, d], w0 ~ N(0, I).
 * Normalizer: loss / (½ Σ h_i + ½·d·σ²/B) (the expected initial loss), clipped to [0, 1.5], NaN/Inf → 1.5.
 */
export function noisyQuadraticTask(config: NoisyQuadraticConfig): NoisyQuadraticTask {
  const cfg = checked(config);
  const name = noisyQuadraticName(cfg);
  const d = cfg.dim;

  const instance = lazy((): NoisyQuadraticInstance => {
    const curvature = new Float32Array(d);
    for (let i = 0; i < d; i++) curvature[i] = 1 / (i + 1);
    return { curvature, noiseVariance: NOISE_VARIANCE };
  });
  const curvatureT = lazyConstant(() => tf.tensor1d(instance().curvature));
  // Per-coordinate std of ξ: sqrt(σ²/(h_i·B)), in float64.
  const xiStd = lazy(() => Array.from(instance().curvature, (h) => Math.sqrt(NOISE_VARIANCE / (h * cfg.batchSize))));
  const initialLoss = lazy(() => {
    let s = 0;
    for (const h of instance().curvature) s += h;
    return 0.5 * s + (0.5 * d * NOISE_VARIANCE) / cfg.batchSize;
  });

  return {
    meta: { name, family: TASK, parametrization: 'sp', dataset: null, width: d, depth: null, batchSize: cfg.batchSize, paramCount: d },
    shapes: { w: [d] },
    mupScale: { w: 1 },
    instance,
    init(seeds: readonly number[]): Params {
      requireSeeds(name, seeds);
      const values = perMember(seeds.map(initRng), d, (rng, out) => fillNormal(rng, out));
      return { w: tf.tensor2d(values, [seeds.length, d]) };
    },
    loss(params: Params, batch: Batch): tf.Tensor1D {
      const w = params.w;
      const xi = batch.xi;
      if (w === undefined) throw new Error(`${name}: params.w is missing`);
      if (xi === undefined) throw new Error(`${name}: batch.xi is missing`);
      return tf.tidy(() => tf.mul(0.5, tf.sum(tf.mul(tf.square(tf.sub(w, xi)), curvatureT()), 1)) as tf.Tensor1D);
    },
    batches(split: Split, seeds: readonly number[]): BatchStream {
      requireSeeds(name, seeds);
      const rngs = seeds.map((s) => batchRng(s, split));
      const std = xiStd();
      return {
        next: () => {
          const values = perMember(rngs, d, (rng, out) => {
            for (let i = 0; i < d; i++) out[i] = std[i]! * rng.normal();
          });
          return { xi: tf.tensor2d(values, [seeds.length, d]) };
        },
      };
    },
    normalizeLoss: relativeNormalizer(initialLoss),
  };
}
