import type * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../src/tree/params.js';
import type { LayerSpec, LayerStatistics } from '../src/optim/layerStatistics.js';

export const SPLITS = ['train', 'inner-valid', 'outer-valid', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export type Parametrization = 'mup' | 'sp';

/**
 * Named tensors of one batch. Every tensor has a leading population axis [P, ...]: member i of a
 * population reads batch[key][i]. For images: x [P, B, D] float32, y [P, B] int32 labels.
 */
export type Batch = Record<string, tf.Tensor>;

/** An endless, seeded stream of batches; the caller disposes each batch it takes. */
export interface BatchStream {
  next(): Batch;
}

export interface TaskMeta {
  /** Canonical, parseable name (parseTaskName(name) rebuilds the task). */
  name: string;
  /** Architecture family: 'mlp', 'conv', 'transformer', 'preference', 'quadratic', 'noisy-quadratic', 'rosenbrock', 'logreg'. */
  family: string;
  parametrization: Parametrization;
  dataset: string | null;
  width: number | null;
  depth: number | null;
  batchSize: number;
  /** Parameters of one member. */
  paramCount: number;
}

/**
 * A training problem (learned_optimization's Task), functional and population-batched: params
 * carry a leading axis [P, ...shape] so that one op stream serves P independent members.
 */
export interface Task {
  readonly meta: TaskMeta;
  /** One member's parameter shapes, in order (the population adds a leading P). */
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  /** Per-tensor μP update multiplier (Tensor Programs V): 1/fan_in for hidden matrices; 1 everywhere under SP. */
  readonly mupScale: Readonly<Record<string, number>>;
  /** Fresh parameters for P = seeds.length members; member i is initialised from seeds[i]. */
  init(seeds: readonly number[]): Params;
  /** Classification tasks: the fraction of correct predictions per member, [P]. Absent otherwise. */
  accuracy?(params: Params, batch: Batch): tf.Tensor1D;
  /**
   * The task's own evaluation metrics, each [P] (one value per member), by name; absent when it has
   * none. Preference tasks: preferenceAccuracy and rewardMargin.
   */
  metrics?(params: Params, batch: Batch): Record<string, tf.Tensor1D>;
  /**
   * Optional fused loss and gradient (a native kernel), equal to tf.valueAndGrads of `loss` summed
   * over members; null when it can't run now (the caller differentiates `loss` instead).
   */
  lossAndGrads?(params: Params, batch: Batch): { losses: tf.Tensor1D; grads: Params } | null;
  /**
   * The dense and convolution layers whose statistics `lossGradsAndStatistics` reports (the layers
   * MKOR preconditions: its reference takes Linear and Conv2d modules, not embeddings or norms);
   * absent when the task reports none.
   */
  readonly layers?: readonly LayerSpec[];
  /**
   * The loss per member and the gradients (as lossAndGrads) and, for every layer in `layers`, its
   * inputs and output gradients on this batch (src/optim/layerStatistics.ts). One pass through
   * tfjs ops, never a fused kernel: training loops call it only on the steps an optimizer reads
   * the statistics (Optimizer.wantsLayerStatistics).
   */
  lossGradsAndStatistics?(params: Params, batch: Batch): { losses: tf.Tensor1D; grads: Params; statistics: Record<string, LayerStatistics> };
  /** Loss per member, [P]: differentiable with tf.grad/tf.valueAndGrads. Non-finite losses stay non-finite. */
  loss(params: Params, batch: Batch): tf.Tensor1D;
  /**
   * Batches of `split` for P = seeds.length members; member i's batches come from seeds[i], so
   * members with equal seeds see identical data (antithetic pairs).
   */
  batches(split: Split, seeds: readonly number[]): BatchStream;
  /** The meta-loss normalizer: classification clip(l, 0, 1.5·ln C) with NaN/Inf → that maximum. */
  normalizeLoss(loss: tf.Tensor): tf.Tensor;
}
