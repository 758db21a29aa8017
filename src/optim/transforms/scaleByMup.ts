import * as tf from '@tensorflow/tfjs-core';
import { mapParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

/** A per-tensor μP update multiplier: a map by parameter name, or a function of name and shape. */
export type MupScale = Record<string, number> | ((name: string, shape: number[]) => number);

export function mupScaleOf(scales: MupScale, name: string, shape: number[]): number {
  const s = typeof scales === 'function' ? scales(name, shape) : scales[name];
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) {
    throw new Error(`scaleByMup: no valid μP scale for parameter '${name}' (got ${String(s)}); expected a finite number >= 0`);
  }
  return s;
}

/** u · mupScale(tensor): Tensor Programs V per-tensor update scale. */
export function scaleByMup(scales: MupScale): GradientTransformation<null> {
  return {
    init(params) {
      for (const [name, t] of Object.entries(params)) mupScaleOf(scales, name, t.shape);
      return null;
    },
    update(updates, state) {
      return {
        updates: mapParams(updates, (u, name) => {
          const s = mupScaleOf(scales, name, u.shape);
          return s === 1 ? u : tf.mul(u, s);
        }),
        state,
      };
    },
  };
}
