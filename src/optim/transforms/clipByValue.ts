import * as tf from '@tensorflow/tfjs-core';
import { mapParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

/**
 * Clips every update element to [−maxDelta, maxDelta] (optax `clip(max_delta)`, optax/_src/clipping.py):
 * VeLO's outer optimizer is Adam on value-clipped meta-gradients.
 */
export function clipByValue(maxDelta: number): GradientTransformation<null> {
  return {
    init: () => null,
    update: (updates, state) => ({ updates: mapParams(updates, (u) => tf.clipByValue(u, -maxDelta, maxDelta)), state }),
  };
}
