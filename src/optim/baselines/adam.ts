import { parseOptions, type OptionsOf } from '../../schema/parseOptions.js';
import { field } from '../options.js';
import { addDecayedWeights } from '../transforms/addDecayedWeights.js';
import { scaleByAdam } from '../transforms/scaleByAdam.js';
import { scaleByLearningRate } from '../transforms/scale.js';
import { scaleByMup } from '../transforms/scaleByMup.js';
import { commonFields, except, makeOptimizer, withCommon } from './common.js';

const adamFields = {
  learningRate: field.learningRate().default(1e-3),
  beta1: field.beta().default(0.9),
  beta2: field.beta().default(0.999),
  epsilon: field.nonNegative().default(1e-8),
  excludeFromWeightDecay: field.patterns().optional(),
  ...commonFields,
};

const adamShape = { ...adamFields, weightDecay: field.nonNegative().default(0) };
const adamwShape = { ...adamFields, weightDecay: field.nonNegative().default(0.01) };
const { excludeFromWeightDecay: _unused, ...muadamBase } = adamFields;
const muadamShape = {
  ...muadamBase,
  /** Per-tensor μP multiplier of the Adam step (1/fan_in for hidden matrices, 1 elsewhere). */
  mupScale: field.mupScale(),
};

/** Options of adam and adamw (which differ only in weightDecay's default): derived from the schema. */
export type AdamOptions = OptionsOf<typeof adamShape>;
export type MuAdamOptions = OptionsOf<typeof muadamShape>;

/** PyTorch Adam: −lr·m̂/(√v̂ + ε); weightDecay (default 0) is L2 added to the gradient. */
export function adam(options: AdamOptions = {}) {
  const o = parseOptions('adam', adamShape, options);
  return makeOptimizer(
    'adam',
    o,
    withCommon('adam', o, [
      except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
      scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
      scaleByLearningRate(o.learningRate),
    ]),
  );
}

/** PyTorch AdamW: w ← w·(1 − lr·wd), then the Adam step; weightDecay default 0.01. */
export function adamw(options: AdamOptions = {}) {
  const o = parseOptions('adamw', adamwShape, options);
  return makeOptimizer(
    'adamw',
    o,
    withCommon('adamw', o, [
      scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
      except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
      scaleByLearningRate(o.learningRate),
    ]),
  );
}

/** μAdam: the Adam step times each tensor's μP scale. */
export function muadam(options: MuAdamOptions) {
  const o = parseOptions('muadam', muadamShape, options);
  return makeOptimizer(
    'muadam',
    o,
    withCommon('muadam', o, [scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }), scaleByMup(o.mupScale), scaleByLearningRate(o.learningRate)]),
  );
}
