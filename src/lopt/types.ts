import type { Optimizer } from '../optim/optimizer.js';
import type { MupScale } from '../optim/transforms/scaleByMup.js';
import type { Params } from '../tree/params.js';

/** Architectures lopt knows, by their checkpoint name. */
export const LEARNED_OPTIMIZER_ARCHS = ['small_fc_lopt', 'mlp_lopt', 'learnable_sgd', 'velo'] as const;
export type LearnedOptimizerArch = (typeof LEARNED_OPTIMIZER_ARCHS)[number];

export interface LearnedOptimizerOptions {
  /** Length of the inner run the optimizer is used for (learned optimizers may read it; kept for parity with VeLO). */
  totalSteps?: number;
  /** Per-tensor μP update multiplier of the target model (1 for every tensor when absent). */
  mupScale?: MupScale;
  /**
   * When set, parameters (and gradients) carry a leading population axis [P, ...] and `theta`
   * holds P stacked copies [P, ...]: member i is updated by theta member i, with every
   * per-tensor statistic taken within the member.
   */
  population?: number;
  /**
   * One step count per population member instead of one shared count (meta-training: particles
   * run desynchronized and restart at different steps). Requires `population`.
   */
  memberSteps?: boolean;
  /** Called (never thrown) when a tensor's gradient holds NaN/Inf and its update was zeroed. */
  onWarning?: (event: { kind: 'non-finite-gradient'; parameter: string; step: number }) => void;
}

/**
 * learned_optimization's LearnedOptimizer: meta-parameters theta (what ES perturbs and a checkpoint
 * stores) and, for a given theta, an Optimizer (so also asTfjsOptimizer(optimizer) for model.fit).
 */
export interface LearnedOptimizer {
  readonly arch: LearnedOptimizerArch;
  /** JSON configuration (hidden size, step multiplier, …): with arch, it rebuilds this object. */
  readonly config: Readonly<Record<string, number | string | boolean>>;
  /** Name → shape of every meta-parameter, in order. */
  readonly thetaShapes: Readonly<Record<string, readonly number[]>>;
  /** The meta-parameters of the last layer whose zeroing makes every step zero (recipe `zeroOutput`). */
  readonly outputLayer: readonly string[];
  initTheta(seed: number): Params;
  optimizer(theta: Params, options?: LearnedOptimizerOptions): Optimizer;
}
