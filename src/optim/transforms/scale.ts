import * as tf from '@tensorflow/tfjs-core';
import { mapParams } from '../../tree/params.js';
import type { GradientTransformation } from '../transform.js';

export interface CountState {
  [key: string]: number;
  count: number;
}

export function scale(factor: number): GradientTransformation<null> {
  return {
    init: () => null,
    update: (updates, state) => ({ updates: mapParams(updates, (u) => tf.mul(u, factor)), state }),
  };
}

/** Multiplies by schedule(count), count = updates already applied (0 at the first step). */
export function scaleBySchedule(schedule: (count: number) => number): GradientTransformation<CountState> {
  return {
    init: () => ({ count: 0 }),
    update(updates, state) {
      const f = schedule(state.count);
      return { updates: mapParams(updates, (u) => tf.mul(u, f)), state: { count: state.count + 1 } };
    },
  };
}

/** −lr (descent direction), constant or a function of the step count (a schedule). */
export function scaleByLearningRate(lr: number | ((count: number) => number)): GradientTransformation<CountState | null> {
  if (typeof lr === 'number') return scale(-lr) as GradientTransformation<CountState | null>;
  return scaleBySchedule((count) => -lr(count)) as GradientTransformation<CountState | null>;
}
