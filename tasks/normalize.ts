import * as tf from '@tensorflow/tfjs-core';

/**
 * learned_optimization's classification meta-loss normalizer: clip(l, 0, 1.5·ln C), with NaN/Inf
 * mapped to that maximum so a diverged inner run costs the most, never nothing.
 */
export function classificationNormalizer(numClasses: number): (loss: tf.Tensor) => tf.Tensor {
  return clippedNormalizer(1.5 * Math.log(numClasses));
}

/** clip(l, 0, max), with NaN/Inf mapped to `max` (the classification normalizer's form, for any cap). */
export function clippedNormalizer(max: number): (loss: tf.Tensor) => tf.Tensor {
  return (loss) =>
    tf.tidy(() => {
      const finite = tf.logicalNot(tf.logicalOr(tf.isNaN(loss), tf.isInf(loss)));
      return tf.where(finite, tf.clipByValue(loss, 0, max), tf.fill(loss.shape, max));
    });
}

/** Mean softmax cross-entropy per member: logits [P, B, C], integer labels [P, B] → [P]. */
export function crossEntropyPerMember(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor1D {
  const classes = logits.shape[logits.shape.length - 1]!;
  const logp = tf.logSoftmax(logits);
  const onehot = tf.oneHot(tf.cast(labels, 'int32'), classes);
  const nll = tf.neg(tf.sum(tf.mul(onehot, logp), -1));
  const axes = Array.from({ length: nll.rank - 1 }, (_, i) => i + 1);
  return tf.mean(nll, axes) as tf.Tensor1D;
}

/** Fraction of correct argmax predictions per member: logits [P, ..., C], labels [P, ...] → [P]. */
export function accuracyPerMember(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const correct = tf.cast(tf.equal(tf.argMax(logits, -1), tf.cast(labels, 'int32')), 'float32');
    const axes = Array.from({ length: correct.rank - 1 }, (_, i) => i + 1);
    return tf.mean(correct, axes) as tf.Tensor1D;
  });
}
