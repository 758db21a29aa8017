import { parseOptions, type OptionsOf } from '../../schema/parseOptions.js';
import { field } from '../options.js';
import { addDecayedWeights } from '../transforms/addDecayedWeights.js';
import { trace } from '../transforms/trace.js';
import { scaleByLearningRate } from '../transforms/scale.js';
import { identity } from '../transform.js';
import { commonFields, except, makeOptimizer, withCommon } from './common.js';

const sgdFields = {
  learningRate: field.learningRate(),
  momentum: field.beta().default(0),
  nesterov: field.flag().default(false),
  /** L2 decay added to the gradient before momentum (PyTorch SGD weight_decay). */
  weightDecay: field.nonNegative().default(0),
  excludeFromWeightDecay: field.patterns().optional(),
  ...commonFields,
};

/** Options of sgd, momentum and nesterov: derived from the schema above. */
export type SgdOptions = OptionsOf<typeof sgdFields>;

function build(name: string, input: unknown, defaults: Partial<SgdOptions>) {
  const given = typeof input === 'object' && input !== null ? input : {};
  const o = parseOptions(name, sgdFields, { ...defaults, ...given });
  if (o.nesterov && o.momentum === 0) {
    throw new Error(`${name}: option 'nesterov' needs option 'momentum' > 0 (PyTorch SGD); got momentum 0`);
  }
  return makeOptimizer(
    name,
    o,
    withCommon(name, o, [
      except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
      o.momentum > 0 ? trace({ decay: o.momentum, nesterov: o.nesterov }) : identity,
      scaleByLearningRate(o.learningRate),
    ]),
  );
}

/** PyTorch SGD: b ← μb + g (b₁ = g₁), step −lr·b, Nesterov −lr·(g + μb); L2 decay into g. */
export function sgd(options: SgdOptions) {
  return build('sgd', options, {});
}

/** Heavy-ball momentum: PyTorch SGD with momentum (default 0.9). */
export function momentum(options: SgdOptions) {
  return build('momentum', options, { momentum: 0.9 });
}

/** Nesterov momentum: PyTorch SGD with nesterov=true (momentum default 0.9). */
export function nesterov(options: SgdOptions) {
  return build('nesterov', options, { momentum: 0.9, nesterov: true });
}
