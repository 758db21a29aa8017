import * as tf from '@tensorflow/tfjs-core';
import { mapParams } from '../../tree/params.js';
import type { StateTree } from '../../tree/stateTree.js';
import type { AnyTransformation, GradientTransformation } from '../transform.js';

export interface ApplyIfFiniteState {
  [key: string]: StateTree;
  inner: StateTree;
  /** Consecutive steps whose gradients were not all finite (0 after a finite one). */
  notfiniteCount: number;
  /** 1 when the last step's gradients were all finite, else 0. */
  lastFinite: number;
  totalNotfinite: number;
}

/**
 * optax.apply_if_finite: when any gradient element is NaN or ±Inf, the step is skipped — zero
 * updates, the inner state kept as it was — and counted; after more than `maxConsecutiveErrors`
 * consecutive skips the inner update is applied anyway (giving up, as optax does). The check
 * covers the whole tree (with a population, every member: the inner state's step counts are
 * shared, so a step is taken or skipped for all). The learned optimizers have their own,
 * per-tensor policy (a non-finite tensor gets a zero update, the others step).
 * Reference: optax/_src/constrain.py (apply_if_finite).
 */
export function applyIfFinite(inner: AnyTransformation, maxConsecutiveErrors: number): GradientTransformation<ApplyIfFiniteState> {
  return {
    init: (params) => ({ inner: inner.init(params), notfiniteCount: 0, lastFinite: 1, totalNotfinite: 0 }),
    update(updates, state, params, context) {
      const grads = Object.values(updates);
      const flag = grads.length === 0 ? null : tf.all(tf.stack(grads.map((g) => tf.all(tf.isFinite(g)))));
      const finite = flag === null ? true : flag.dataSync()[0] === 1;
      const notfiniteCount = finite ? 0 : state.notfiniteCount + 1;
      const counters = { notfiniteCount, lastFinite: finite ? 1 : 0, totalNotfinite: state.totalNotfinite + (finite ? 0 : 1) };
      if (finite || notfiniteCount > maxConsecutiveErrors) {
        const r = inner.update(updates, state.inner, params, context);
        return { updates: r.updates, state: { inner: r.state, ...counters } };
      }
      return { updates: mapParams(updates, (u) => tf.zerosLike(u)), state: { inner: state.inner, ...counters } };
    },
  };
}
