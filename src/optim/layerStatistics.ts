// What a second-order optimizer (MKOR) reads besides the gradients: for each dense or convolution
// layer, its input and the gradient at its output, per row of the batch. Tasks that can report them
// declare their layers (Task.layers) and compute them on request (Task.lossGradsAndStatistics);
// an optimizer that reads them says on which steps (Optimizer.wantsLayerStatistics), so training
// loops compute them only then and no other optimizer pays for them.
import type * as tf from '@tensorflow/tfjs-core';
import type { StateTree } from '../tree/stateTree.js';

/**
 * A layer whose statistics a task reports: `kernel` and `bias` name its parameters (`bias` null
 * when it has none). `dense`: y = x·W (+ b) with W [fanIn, fanOut] over rows x [N, fanIn];
 * `conv`: a convolution with kernel [kh, kw, c_in, c_out], whose fan-in is kh·kw·c_in in the
 * kernel's own (row-major) order.
 */
export interface LayerSpec {
  kernel: string;
  bias: string | null;
  kind: 'dense' | 'conv';
}

/**
 * One layer's statistics for a batch, with the population axis when the parameters have one:
 *   inputs [P, N, fanIn]: the layer's input per row (a dense layer's rows are the batch's examples,
 *     or its tokens for a sequence model; a convolution's rows are examples, and each row is the
 *     example's input patches averaged over the output positions);
 *   outputGrads [P, N, fanOut]: ∂loss/∂(layer output) per row, where loss is the member's
 *     (mean-reduced) training loss and the output is x·W + b before any multiplier (a
 *     convolution's averaged over its output positions).
 */
export interface LayerStatistics {
  inputs: tf.Tensor;
  outputGrads: tf.Tensor;
}

/** Statistics of every reported layer, by kernel name. */
export type LayerStatisticsMap = Readonly<Record<string, LayerStatistics>>;

/** The steps on which an optimizer reads layer statistics: step % every === 0, and every step before warmupSteps. */
export interface LayerStatisticsSchedule {
  every: number;
  warmupSteps: number;
}

/**
 * How an Optimizer that reads layer statistics says when: its schedule, and `clock`, the number of
 * updates it has applied as its state records it (a step skipped by applyIfFinite does not count,
 * so a caller's own loop index could drift from it).
 */
export interface LayerStatisticsReader {
  schedule: LayerStatisticsSchedule;
  clock(inner: StateTree): number;
}

/** Whether `schedule` reads statistics at 0-based `step`. */
export function readsStatisticsAt(schedule: LayerStatisticsSchedule, step: number): boolean {
  return step % schedule.every === 0 || step < schedule.warmupSteps;
}
