import * as tf from '@tensorflow/tfjs-core';

/**
 * The L2 norm of a whole tensor, or — with a population axis — of each member's slice x[i],
 * shaped [P, 1, …, 1] so that it broadcasts back over x.
 */
export function memberNorm(x: tf.Tensor, population: boolean): tf.Tensor {
  if (!population) return tf.sqrt(tf.sum(tf.square(x)));
  return tf.sqrt(memberSumOfSquares(x));
}

/** Σ x² per member, [P, 1, …, 1] (or a scalar without a population axis). */
export function memberSumOfSquares(x: tf.Tensor): tf.Tensor {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i + 1);
  return axes.length === 0 ? tf.square(x) : tf.sum(tf.square(x), axes, true);
}

/** Reshapes a per-member [P, 1, …] value to broadcast over a tensor of rank `rank`. */
export function toRank(x: tf.Tensor, rank: number): tf.Tensor {
  const p = x.shape[0]!;
  return tf.reshape(x, [p, ...new Array<number>(Math.max(rank - 1, 0)).fill(1)]);
}
