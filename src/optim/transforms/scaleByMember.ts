import * as tf from '@tensorflow/tfjs-core';
import type { GradientTransformation } from '../transform.js';
import type { Params } from '../../tree/params.js';

/** Multiplies member i's update (the leading population axis) by factors[i]: a per-member learning rate. */
export function scaleByMember(factors: readonly number[]): GradientTransformation<null> {
  const P = factors.length;
  return {
    init: () => null,
    update(updates, state) {
      const out: Params = {};
      const f = tf.tensor1d(Array.from(factors));
      for (const [name, u] of Object.entries(updates)) {
        if (u.shape[0] !== P) throw new Error(`scaleByMember: update '${name}' has first dim ${u.shape[0]}, expected ${P} members`);
        out[name] = tf.mul(u, tf.reshape(f, [P, ...new Array<number>(u.rank - 1).fill(1)]));
      }
      return { updates: out, state };
    },
  };
}
