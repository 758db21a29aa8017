// VeLO's loss features: HyperV2's BufferLossAccumulators (hyper_v2.py), one buffer per population
// member. Ten EMAs of the training loss with half-lives logspace(1, log10(num_steps), 10); the
// features say where each EMA sits between the running minimum and the next-longer EMA.
import * as tf from '@tensorflow/tfjs-core';

export const LOSS_EMAS = 10;
export const LOSS_FEATURES = LOSS_EMAS - 1;
/** The running minimum's starting value (HyperV2: 999999999999.). */
const RUNNING_MIN_START = 999999999999;

export type LossBuffer = {
  /** The EMAs, uncorrected [P, 10]. */
  means: tf.Tensor2D;
  /** The smallest bias-corrected value each EMA has had [P, 10]. */
  runningMin: tf.Tensor2D;
};

/**
 * exp(−1/h) for the half-lives h = 10^linspace(1, log10(numSteps), 10) (jnp.logspace), float64
 * here where the reference computes them in float32.
 */
export function lossBufferDecays(numSteps: number): number[] {
  const stop = Math.log10(numSteps);
  return Array.from({ length: LOSS_EMAS }, (_, i) => Math.exp(-1 / 10 ** (1 + ((stop - 1) * i) / (LOSS_EMAS - 1))));
}

export function initLossBuffer(P: number): LossBuffer {
  return { means: tf.zeros([P, LOSS_EMAS]), runningMin: tf.fill([P, LOSS_EMAS], RUNNING_MIN_START) };
}

/** [P, 10] of 1 − d^n for each member's decays and exponent n (the EMAs' bias correction). */
function correction(decays: readonly number[][], exponent: readonly number[]): tf.Tensor2D {
  return tf.tensor2d(decays.map((d, k) => d.map((x) => 1 - x ** exponent[k]!)));
}

/**
 * The buffer after seeing `loss` [P] at iteration `iteration[k]` (updates so far). The loss is
 * first clipped to twice the largest bias-corrected EMA (the loss itself at iteration 0).
 */
export function updateLossBuffer(buffer: LossBuffer, loss: tf.Tensor1D, decays: readonly number[][], iteration: readonly number[]): LossBuffer {
  return tf.tidy(() => {
    const P = loss.shape[0];
    const d = tf.tensor2d(decays.map((x) => x.slice()));
    const cor = correction(
      decays,
      iteration.map((i) => i + 1),
    );
    const approxMax = tf.max(tf.div(buffer.means, cor), 1);
    const first = tf.tensor1d(
      iteration.map((i) => (i === 0 ? 1 : 0)),
      'bool',
    );
    const cap = tf.mul(tf.abs(tf.where(first, loss, approxMax)), 2);
    const clipped = tf.reshape(tf.minimum(cap, loss), [P, 1]);
    // 1 − d from the float64 decays: in float32 it would lose ~3e-5 relative for the longest EMAs.
    const mix = tf.tensor2d(decays.map((x) => x.map((v) => 1 - v)));
    const means = tf.add(tf.mul(buffer.means, d), tf.mul(clipped, mix)) as tf.Tensor2D;
    const runningMin = tf.minimum(buffer.runningMin, tf.div(means, cor)) as tf.Tensor2D;
    return { means, runningMin };
  });
}

/**
 * The 9 features [P, 9] of a buffer that has seen `iteration[k]` losses:
 * clip((mean_i − min_i) / max(1e-8, mean_{i+1} − min_i) − 1, −1, 1) on bias-corrected EMAs,
 * all zero while iteration ≤ 2 ("first couple features are bad").
 */
export function lossFeatures(buffer: LossBuffer, decays: readonly number[][], iteration: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => {
    const P = iteration.length;
    const cor = tf.div(buffer.means, correction(decays, iteration));
    const next = tf.slice(cor, [0, 1], [P, LOSS_FEATURES]);
    const mean = tf.slice(cor, [0, 0], [P, LOSS_FEATURES]);
    const min = tf.slice(buffer.runningMin, [0, 0], [P, LOSS_FEATURES]);
    const den = tf.maximum(tf.sub(next, min), 1e-8);
    const feature = tf.clipByValue(tf.sub(tf.div(tf.sub(mean, min), den), 1), -1, 1);
    const live = tf.tensor2d(
      iteration.map((i) => [i <= 2 ? 0 : 1]),
      [P, 1],
    );
    return tf.mul(feature, live) as tf.Tensor2D;
  });
}
