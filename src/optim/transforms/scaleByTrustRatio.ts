import * as tf from '@tensorflow/tfjs-core';
import { zipParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

export interface TrustRatioState {
  [key: string]: number;
  count: number;
}

function l2(x: tf.Tensor): tf.Scalar {
  return tf.sqrt(tf.sum(tf.square(x))) as tf.Scalar;
}

/**
 * Layer-wise trust ratio, per tensor: u · c·‖w‖/(‖u‖ + eps), with factor 1 when either norm is 0
 * (optax scale_by_trust_ratio; with c = 1, eps = 0 it is tensorflow_addons LAMB's ratio).
 * `ratioScale(t)`, t = updates done before this one + 1, multiplies the ratio where both norms are
 * non-zero (TVLARS's φ(t), as its reference code does).
 */
export function scaleByTrustRatio(o: {
  trustCoefficient?: number;
  eps?: number;
  ratioScale?: (t: number) => number;
} = {}): GradientTransformation<TrustRatioState> {
  const coefficient = o.trustCoefficient ?? 1;
  const eps = o.eps ?? 0;
  return {
    init: () => ({ count: 0 }),
    update(updates, state, params) {
      const c = o.ratioScale ? coefficient * o.ratioScale(state.count + 1) : coefficient;
      const out = zipParams(updates, params, (u, p) => {
        const pNorm = l2(p);
        const uNorm = l2(u);
        const ratio = tf.div(tf.mul(pNorm, c), tf.add(uNorm, eps));
        const zero = tf.logicalOr(tf.equal(pNorm, 0), tf.equal(uNorm, 0));
        return tf.mul(u, tf.where(zero, tf.onesLike(ratio), ratio));
      });
      return { updates: out, state: { count: state.count + 1 } };
    },
  };
}
