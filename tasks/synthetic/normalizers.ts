import * as tf from '@tensorflow/tfjs-core';

/**
 * Non-classification meta-loss normalizer: loss / scale clipped to [0, max], NaN/±Inf → max.
 * `scale` is the task's expected initial loss, so a fresh member sits near 1 and a diverged one
 * costs `max` — the analogue of classification's 1.5·ln C ceiling, ln C being the loss at init.
 */
export const RELATIVE_LOSS_MAX = 1.5;

export function relativeNormalizer(scale: () => number, max = RELATIVE_LOSS_MAX): (loss: tf.Tensor) => tf.Tensor {
  return (loss) =>
    tf.tidy(() => {
      const clipped = tf.clipByValue(tf.div(loss, scale()), 0, max);
      return tf.where(tf.isFinite(loss), clipped, tf.fill(loss.shape, max));
    });
}
