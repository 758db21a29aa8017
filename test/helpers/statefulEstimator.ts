// Tests that step one estimator many times keep its state here: the estimator itself is pure
// (state in, state out), this is the trainer's loop without the outer update.
import type { EstimateResult, EstimatorState, GradientEstimator, UnitRunner } from '../../src/meta/estimator.js';

export interface StatefulEstimator {
  estimate(theta: Float32Array, outerStep: number, run: UnitRunner): Promise<EstimateResult>;
  /** The state after the last estimate (the estimator's init() before the first). */
  state(): EstimatorState;
}

export function stateful(estimator: GradientEstimator): StatefulEstimator {
  let state = estimator.init();
  return {
    async estimate(theta, outerStep, run) {
      const next = await estimator.estimate(theta, outerStep, state, run);
      state = next.state;
      return next.result;
    },
    state: () => state,
  };
}
