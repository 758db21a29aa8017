import { parseOptions, type OptionsOf } from '../../schema/parseOptions.js';
import { field } from '../options.js';
import { addDecayedWeights } from '../transforms/addDecayedWeights.js';
import { scaleByAdam } from '../transforms/scaleByAdam.js';
import { scaleByTrustRatio } from '../transforms/scaleByTrustRatio.js';
import { scaleByLearningRate } from '../transforms/scale.js';
import { commonFields, except, makeOptimizer, withCommon } from './common.js';

const lambFields = {
  learningRate: field.learningRate().default(1e-3),
  beta1: field.beta().default(0.9),
  beta2: field.beta().default(0.999),
  epsilon: field.nonNegative().default(1e-6),
  weightDecay: field.nonNegative().default(0),
  /** Name patterns (regular expressions, searched) exempt from weight decay. */
  excludeFromWeightDecay: field.patterns().optional(),
  /** Name patterns exempt from the trust ratio; absent or empty → excludeFromWeightDecay (tensorflow_addons). */
  excludeFromLayerAdaptation: field.patterns().optional(),
  ...commonFields,
};

export type LambOptions = OptionsOf<typeof lambFields>;

/**
 * LAMB as tensorflow_addons: u = m̂/(√v̂ + ε) + wd·w; r = ‖w‖/‖u‖ (1 if either is 0); w ← w − lr·r·u.
 */
export function lamb(options: LambOptions = {}) {
  const o = parseOptions('lamb', lambFields, options);
  return makeOptimizer(
    'lamb',
    o,
    withCommon('lamb', o, [
      scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
      except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
      // tensorflow_addons falls back to the weight-decay exclusions when this list is absent *or empty*.
      except(
        scaleByTrustRatio({ population: o.population !== undefined }),
        o.excludeFromLayerAdaptation?.length ? o.excludeFromLayerAdaptation : o.excludeFromWeightDecay,
      ),
      scaleByLearningRate(o.learningRate),
    ]),
  );
}
