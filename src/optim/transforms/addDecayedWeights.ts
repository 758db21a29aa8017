import * as tf from '@tensorflow/tfjs-core';
import { zipParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

/** u + wd·w: L2 weight decay added to the update (for PyTorch SGD/Adam, LAMB and LARS alike). */
export function addDecayedWeights(weightDecay: number): GradientTransformation<null> {
  return {
    init: () => null,
    update(updates, state, params) {
      if (weightDecay === 0) return { updates, state };
      return { updates: zipParams(updates, params, (u, p) => tf.add(u, tf.mul(p, weightDecay))), state };
    },
  };
}
