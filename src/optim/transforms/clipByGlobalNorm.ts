import * as tf from '@tensorflow/tfjs-core';
import { globalNorm, mapParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';
import { memberSumOfSquares, toRank } from './memberNorm.js';

/**
 * Rescales all updates together so that their global norm is at most maxNorm (optax). With
 * `population`, each member's updates (the slices [i] of every tensor) are clipped on their own.
 */
export function clipByGlobalNorm(maxNorm: number, population = false): GradientTransformation<null> {
  return {
    init: () => null,
    update(updates, state) {
      let norm: tf.Tensor;
      if (population) {
        const perMember = Object.values(updates).map((u) => tf.reshape(memberSumOfSquares(u), [u.shape[0]!]));
        norm = tf.sqrt(perMember.length === 0 ? tf.zeros([0]) : tf.addN(perMember));
      } else {
        norm = globalNorm(updates);
      }
      const factor = tf.div(maxNorm, tf.maximum(norm, maxNorm));
      return { updates: mapParams(updates, (u) => tf.mul(u, population ? toRank(factor, u.rank) : factor)), state };
    },
  };
}
