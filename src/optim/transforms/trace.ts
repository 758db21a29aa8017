import * as tf from '@tensorflow/tfjs-core';
import { zerosLikeParams, mapParams, type Params } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

export interface TraceState {
  [key: string]: Params;
  trace: Params;
}

/**
 * Momentum trace t ← u + μ·t from t = 0 (so t₁ = u₁, as PyTorch's buffer); emits t, or
 * u + μ·t for Nesterov (optax trace ≡ PyTorch SGD with dampening 0).
 */
export function trace(o: { decay: number; nesterov?: boolean }): GradientTransformation<TraceState> {
  return {
    init: (params) => ({ trace: zerosLikeParams(params) }),
    update(updates, state) {
      const next: Params = {};
      const out = mapParams(updates, (u, name) => {
        const t = tf.add(u, tf.mul(state.trace[name]!, o.decay));
        next[name] = t;
        return o.nesterov ? tf.add(u, tf.mul(t, o.decay)) : t;
      });
      return { updates: out, state: { trace: next } };
    },
  };
}
