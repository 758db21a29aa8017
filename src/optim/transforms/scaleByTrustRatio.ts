import * as tf from '@tensorflow/tfjs-core';
import { zipParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';
import { memberNorm } from './memberNorm.js';

export interface TrustRatioState {
  [key: string]: number;
  count: number;
}

/**
 * Layer-wise trust ratio, per tensor: u · c·‖w‖/(‖u‖ + eps), with factor 1 when either norm is 0
 * (optax scale_by_trust_ratio; with c = 1, eps = 0 it is tensorflow_addons LAMB's ratio).
 * `ratioScale(t)`, t = updates done before this one + 1, multiplies the ratio where both norms are
 * non-zero (TVLARS's φ(t), as its reference code does). With `population`, tensors carry a leading
 * member axis and every norm is taken within a member.
 */
export function scaleByTrustRatio(
  o: {
    trustCoefficient?: number;
    eps?: number;
    ratioScale?: (t: number) => number;
    population?: boolean;
  } = {},
): GradientTransformation<TrustRatioState> {
  const coefficient = o.trustCoefficient ?? 1;
  const eps = o.eps ?? 0;
  return {
    init: () => ({ count: 0 }),
    update(updates, state, params) {
      const c = o.ratioScale ? coefficient * o.ratioScale(state.count + 1) : coefficient;
      const out = zipParams(updates, params, (u, p) => {
        const pNorm = memberNorm(p, o.population === true);
        const uNorm = memberNorm(u, o.population === true);
        const ratio = tf.div(tf.mul(pNorm, c), tf.add(uNorm, eps));
        const zero = tf.logicalOr(tf.equal(pNorm, 0), tf.equal(uNorm, 0));
        return tf.mul(u, tf.where(zero, tf.onesLike(ratio), ratio));
      });
      return { updates: out, state: { count: state.count + 1 } };
    },
  };
}
