import * as tf from '@tensorflow/tfjs-core';
import { mapParams, zerosLikeParams, type Params } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

export interface AdamState {
  [key: string]: number | Params;
  count: number;
  mu: Params;
  nu: Params;
}

/**
 * Bias-corrected Adam direction m̂/(√(v̂ + epsRoot) + eps), as PyTorch and optax compute it
 * (eps added after the square root). Bias corrections are computed in float64 on the host.
 */
export function scaleByAdam(o: { b1: number; b2: number; eps: number; epsRoot?: number }): GradientTransformation<AdamState> {
  const epsRoot = o.epsRoot ?? 0;
  return {
    init: (params) => ({ count: 0, mu: zerosLikeParams(params), nu: zerosLikeParams(params) }),
    update(updates, state) {
      const count = state.count + 1;
      const c1 = 1 / (1 - Math.pow(o.b1, count));
      const c2 = 1 / (1 - Math.pow(o.b2, count));
      const mu: Params = {};
      const nu: Params = {};
      const out = mapParams(updates, (g, name) => {
        const m = tf.add(tf.mul(state.mu[name]!, o.b1), tf.mul(g, 1 - o.b1));
        const v = tf.add(tf.mul(state.nu[name]!, o.b2), tf.mul(tf.square(g), 1 - o.b2));
        mu[name] = m;
        nu[name] = v;
        const vHat = epsRoot === 0 ? tf.mul(v, c2) : tf.add(tf.mul(v, c2), epsRoot);
        return tf.div(tf.mul(m, c1), tf.add(tf.sqrt(vHat), o.eps));
      });
      return { updates: out, state: { count, mu, nu } };
    },
  };
}
