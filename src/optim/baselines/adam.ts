import { parseOptions, field } from '../options.js';
import { addDecayedWeights } from '../transforms/addDecayedWeights.js';
import { scaleByAdam } from '../transforms/scaleByAdam.js';
import { scaleByLearningRate } from '../transforms/scale.js';
import { scaleByMup, type MupScale } from '../transforms/scaleByMup.js';
import { commonFields, except, makeOptimizer, withCommon, type LearningRate } from './common.js';

const adamFields = {
  learningRate: field.learningRate().default(1e-3),
  beta1: field.beta().default(0.9),
  beta2: field.beta().default(0.999),
  epsilon: field.nonNegative().default(1e-8),
  excludeFromWeightDecay: field.patterns().optional(),
  ...commonFields,
};

export interface AdamOptions {
  learningRate?: LearningRate;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
  excludeFromWeightDecay?: string[];
  clipGlobalNorm?: number;
  /** Skip non-finite steps, at most this many in a row (optax apply_if_finite). */
  applyIfFinite?: number;
  /** Parameters carry a leading axis of this many independent members; norms are taken per member. */
  population?: number;
}

/** PyTorch Adam: −lr·m̂/(√v̂ + ε); weightDecay (default 0) is L2 added to the gradient. */
export function adam(options: AdamOptions = {}) {
  const o = parseOptions('adam', { ...adamFields, weightDecay: field.nonNegative().default(0) }, options);
  return makeOptimizer('adam', o, withCommon('adam', o, [
    except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
    scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
    scaleByLearningRate(o.learningRate),
  ]));
}

/** PyTorch AdamW: w ← w·(1 − lr·wd), then the Adam step; weightDecay default 0.01. */
export function adamw(options: AdamOptions = {}) {
  const o = parseOptions('adamw', { ...adamFields, weightDecay: field.nonNegative().default(0.01) }, options);
  return makeOptimizer('adamw', o, withCommon('adamw', o, [
    scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
    except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
    scaleByLearningRate(o.learningRate),
  ]));
}

export interface MuAdamOptions extends Omit<AdamOptions, 'weightDecay' | 'excludeFromWeightDecay'> {
  /** Per-tensor μP multiplier of the Adam step (1/fan_in for hidden matrices, 1 elsewhere). */
  mupScale: MupScale;
}

/** μAdam: the Adam step times each tensor's μP scale. */
export function muadam(options: MuAdamOptions) {
  const { excludeFromWeightDecay: _x, ...fields } = adamFields;
  const o = parseOptions('muadam', { ...fields, mupScale: field.mupScale() }, options);
  return makeOptimizer('muadam', o, withCommon('muadam', o, [
    scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
    scaleByMup(o.mupScale),
    scaleByLearningRate(o.learningRate),
  ]));
}
