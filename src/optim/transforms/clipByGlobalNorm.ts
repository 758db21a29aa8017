import * as tf from '@tensorflow/tfjs-core';
import { globalNorm, mapParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

/** Rescales all updates together so that their global norm is at most maxNorm (optax). */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<null> {
  return {
    init: () => null,
    update(updates, state) {
      const norm = globalNorm(updates);
      const factor = tf.div(maxNorm, tf.maximum(norm, maxNorm));
      return { updates: mapParams(updates, (u) => tf.mul(u, factor)), state };
    },
  };
}
