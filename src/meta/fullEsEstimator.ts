// Full-episode antithetic ES: every outer step runs whole episodes from a fresh initialization
// (no state carried between outer steps) and scores each member by the mean loss over the
// episode, the last loss, or the last parameters' loss recomputed on fresh batches.
import { Rng } from '../random/rng.js';
import type { Split } from '../../tasks/types.js';
import { esGradient } from './esGradient.js';
import { finiteMean, pairCurves, perturbedThetas, sampleNoise, type EstimatorOptions, type EstimatorState, type GradientEstimator } from './estimator.js';
import { episodeLength } from './particles.js';

export type FullEsMetaLoss = 'mean' | 'last' | 'last-fresh';

export interface FullEsEstimatorOptions extends EstimatorOptions {
  metaLoss: FullEsMetaLoss;
  /** 'last-fresh': batches of `freshSplit` the final loss is averaged over. */
  freshBatches: number;
  freshSplit: Split;
  /** Sign-ES: Δ_i replaced by sign(Δ_i)·signScale. */
  signScale?: number;
}

export function fullEsEstimator(o: FullEsEstimatorOptions): GradientEstimator {
  const K = o.particles;
  const unitCount = Math.ceil(K / o.particlesPerUnit);

  return {
    label: `full-es ${o.family.name}`,

    async estimate(theta, outerStep, _state, run) {
      if (theta.length !== o.thetaSize) throw new Error(`full-es: theta has ${theta.length} values, expected ${o.thetaSize}`);
      const noise = sampleNoise(o.root, outerStep, K, o.thetaSize);
      // One episode length per outer step, shared by every particle so each unit runs it whole.
      const steps = episodeLength(o.root, 0, outerStep, o.lengths);
      const outputs = await Promise.all(
        Array.from({ length: unitCount }, (_, u) => {
          const from = u * o.particlesPerUnit;
          const k = Math.min(o.particlesPerUnit, K - from);
          return run(
            {
              task: o.family.sample(new Rng(o.root).fork(`outer-${outerStep}`).fork(`unit-${u}`)),
              lopt: o.lopt,
              root: o.root,
              particles: Array.from({ length: k }, (_, j) => from + j),
              // Episode index = outer step: fresh init and data seeds every outer step.
              particleStates: Array.from({ length: k }, () => ({ episode: outerStep, step: 0, length: steps })),
              lengths: { kind: 'fixed', steps },
              thetas: perturbedThetas(theta, noise, o.sigma, from, k),
              steps,
              start: 'persistent',
              state: null,
              ...(o.metaLoss === 'last-fresh' ? { finalLoss: { batches: o.freshBatches, split: o.freshSplit } } : {}),
            },
            { outerStep, unit: u },
          );
        }),
      );
      const deltas: number[] = [];
      let lossSum = 0;
      const raw: number[] = [];
      for (const out of outputs) {
        pairCurves(out.losses, out.resetStep.length, steps).forEach((curves, j) => {
          const score = (curve: Float64Array, m: number): number => {
            if (o.metaLoss === 'last-fresh') return out.finalLosses![m]!;
            if (o.metaLoss === 'last') return curve[steps - 1]!;
            let s = 0;
            for (let t = 0; t < steps; t++) s += curve[t]!;
            return s / steps;
          };
          const pos = score(curves.positive, 2 * j);
          const neg = score(curves.negative, 2 * j + 1);
          deltas.push(pos - neg);
          lossSum += (pos + neg) / 2;
        });
        raw.push(finiteMean(out.rawLosses));
      }
      return {
        result: { grad: esGradient(deltas, noise, o.sigma, o.signScale), metaLoss: lossSum / K, innerLoss: finiteMean(raw), innerSteps: 2 * K * steps },
        state: EMPTY_STATE,
      };
    },

    // Nothing persists between outer steps: every draw is a function of (root, outer step).
    init: () => EMPTY_STATE,
    check: (state) => {
      if (Object.keys(state.json).length > 0 || Object.keys(state.arrays).length > 0)
        throw new Error(`full-es: expected an empty state (it carries nothing between steps)`);
    },
    // Every estimate runs whole episodes from initialization: nothing to drop.
    restart: () => EMPTY_STATE,
  };
}

const EMPTY_STATE: EstimatorState = Object.freeze({ json: Object.freeze({}), arrays: Object.freeze({}) }) as EstimatorState;
