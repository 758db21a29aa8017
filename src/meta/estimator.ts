// The GradientEstimator role (learned_optimization): theta in, a meta-gradient estimate out, with
// persistent worker state that a checkpoint can hold. Work goes out as truncation units.
import type { JsonValue } from '../checkpoint/format.js';
import { Rng } from '../random/rng.js';
import type { TaskFamily } from '../../tasks/families.js';
import type { EpisodeLength } from './particles.js';
import type { TruncationUnitInput, TruncationUnitOutput } from './truncationUnit.js';

/** What every particle-based estimator is built from. */
export interface EstimatorOptions {
  family: TaskFamily;
  lopt: { arch: string; config: Record<string, number | string | boolean> };
  /** This estimator's stream root (from the recipe seed and the estimator's index). */
  root: string;
  /** Antithetic pairs per outer step (K). */
  particles: number;
  /** Particles per unit: the unit of vectorization and of worker parallelism. */
  particlesPerUnit: number;
  sigma: number;
  /** Lengths of the inner episodes. */
  lengths: EpisodeLength;
  thetaSize: number;
}

/** Where a unit sits in its estimator's outer step: names a queued job (src/distributed/). */
export interface UnitTag {
  outerStep: number;
  /** The unit's index among its estimator's units for this step. */
  unit: number;
}

/** Runs a unit somewhere (this thread, a worker thread, a queue) and returns its result. */
export type UnitRunner = (input: TruncationUnitInput, tag: UnitTag) => Promise<TruncationUnitOutput>;

/** A UnitRunner for a whole run: the trainer adds the estimator's index to the tag. */
export type RunUnit = (input: TruncationUnitInput, tag: UnitTag & { estimator: number }) => Promise<TruncationUnitOutput>;

export interface EstimateResult {
  /** The meta-gradient estimate, one value per meta-parameter (flat theta order). */
  grad: Float64Array;
  /** Mean normalized meta-loss of the perturbed particles. */
  metaLoss: number;
  /** Mean unnormalized training loss of the particles over this estimate (NaN-free mean, NaN if all NaN). */
  innerLoss: number;
  /** Inner steps taken, population members counted one by one. */
  innerSteps: number;
}

/**
 * An estimator's worker state as plain data — JSON plus named float arrays — exactly as a
 * checkpoint stores it. It is passed in and out (learned_optimization's worker state): an
 * estimator holds no mutable state of its own, so a step that fails simply does not commit.
 */
export interface EstimatorState {
  json: { [key: string]: JsonValue };
  arrays: Record<string, Float32Array>;
}

export interface GradientEstimator {
  /** e.g. 'truncated-pes mlp-mnist8-w32-d1-relu-b128-mup'. */
  readonly label: string;
  /** The state before the first outer step. */
  init(): EstimatorState;
  /** One meta-gradient estimate from `state`, and the state after it; `state` is not changed. */
  estimate(theta: Float32Array, outerStep: number, state: EstimatorState, run: UnitRunner): Promise<{ result: EstimateResult; state: EstimatorState }>;
  /** Throws, naming the field, unless `state` is one this estimator could have produced (a resumed checkpoint's). */
  check(state: EstimatorState): void;
  /** The state with the inner runs dropped: every particle starts a new episode (desynchronized) at `outerStep`, as after a resample. */
  restart(state: EstimatorState, outerStep: number): EstimatorState;
}

/**
 * A unit's losses laid out [T, 2k] — step-major, and within a step particle j's positive member
 * at 2j and its negative member at 2j + 1 — as each particle's two loss curves over the T steps.
 */
export function pairCurves(losses: Float32Array, k: number, T: number): { positive: Float64Array; negative: Float64Array }[] {
  if (losses.length !== T * 2 * k) throw new Error(`unit losses: ${losses.length} values, expected [${T}, ${2 * k}]`);
  return Array.from({ length: k }, (_, j) => {
    const positive = new Float64Array(T);
    const negative = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      positive[t] = losses[t * 2 * k + 2 * j]!;
      negative[t] = losses[t * 2 * k + 2 * j + 1]!;
    }
    return { positive, negative };
  });
}

/**
 * Antithetic noise for an outer step: ε ~ N(0, I) [K, n], particle i's row from its own stream, so
 * the noise does not depend on how particles are grouped.
 */
export function sampleNoise(root: string, outerStep: number, particles: number, n: number): Float32Array {
  const out = new Float32Array(particles * n);
  for (let i = 0; i < particles; i++) {
    const rng = new Rng(root).fork(`noise-${outerStep}`).fork(`particle-${i}`);
    for (let j = 0; j < n; j++) out[i * n + j] = rng.normal();
  }
  return out;
}

/** The thetas of particles `from … from+k−1`: [θ+σε, θ−σε] per particle, member-major. */
export function perturbedThetas(theta: Float32Array, noise: Float32Array, sigma: number, from: number, k: number): Float32Array {
  const n = theta.length;
  const out = new Float32Array(2 * k * n);
  for (let j = 0; j < k; j++) {
    const eps = noise.subarray((from + j) * n, (from + j + 1) * n);
    const pos = out.subarray(2 * j * n, (2 * j + 1) * n);
    const neg = out.subarray((2 * j + 1) * n, (2 * j + 2) * n);
    for (let q = 0; q < n; q++) {
      pos[q] = theta[q]! + sigma * eps[q]!;
      neg[q] = theta[q]! - sigma * eps[q]!;
    }
  }
  return out;
}

/** Mean of the finite values (NaN when none is finite). */
export function finiteMean(values: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) {
      s += v;
      n++;
    }
  }
  return n === 0 ? Number.NaN : s / n;
}
