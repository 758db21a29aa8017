import { parseOptions, type OptionsOf } from '../../schema/parseOptions.js';
import { field } from '../options.js';
import { addDecayedWeights } from '../transforms/addDecayedWeights.js';
import { scaleByTrustRatio } from '../transforms/scaleByTrustRatio.js';
import { scaleByLearningRate } from '../transforms/scale.js';
import { trace } from '../transforms/trace.js';
import { commonFields, except, makeOptimizer, withCommon } from './common.js';

const larsFields = {
  learningRate: field.learningRate(),
  weightDecay: field.nonNegative().default(0),
  /** η of the trust ratio η‖w‖/(‖u‖ + ε). */
  trustCoefficient: field.nonNegative().default(1e-3),
  epsilon: field.nonNegative().default(0),
  momentum: field.beta().default(0.9),
  nesterov: field.flag().default(false),
  /** Name patterns exempt from weight decay (optax weight_decay_mask). */
  excludeFromWeightDecay: field.patterns().optional(),
  /** Name patterns exempt from the trust ratio (optax trust_ratio_mask); independent of the above. */
  excludeFromTrustRatio: field.patterns().optional(),
  ...commonFields,
};

export type LarsOptions = OptionsOf<typeof larsFields>;

type LarsParsed = ReturnType<typeof parseLars>;
const parseLars = (name: string, shape: typeof larsFields, input: unknown) => parseOptions(name, shape, input);

function larsChain(name: string, o: LarsParsed, ratioScale?: (t: number) => number) {
  const population = o.population !== undefined;
  return withCommon(name, o, [
    except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
    except(
      scaleByTrustRatio(
        ratioScale
          ? { trustCoefficient: o.trustCoefficient, eps: o.epsilon, ratioScale, population }
          : { trustCoefficient: o.trustCoefficient, eps: o.epsilon, population },
      ),
      o.excludeFromTrustRatio,
    ),
    // optax places the learning rate inside the momentum trace.
    scaleByLearningRate(o.learningRate),
    trace({ decay: o.momentum, nesterov: o.nesterov }),
  ]);
}

/**
 * LARS as optax: u = g + wd·w; u ← u·η‖w‖/(‖u‖ + ε) (1 if either norm is 0); u ← −lr·u;
 * t = u + μt, emitting t (or u + μt with Nesterov).
 */
export function lars(options: LarsOptions) {
  const o = parseLars('lars', larsFields, options);
  return makeOptimizer('lars', o, larsChain('lars', o));
}

const tvlarsFields = {
  ...larsFields,
  /** λ of φ(t) = 1/(α + e^{λ(t − d_e)}) + γ_min. */
  lambda: field.nonNegative().default(1e-3),
  alpha: field.positive().default(0.1),
  /** d_e, in steps. */
  delaySteps: field.real().default(0),
  gammaMin: field.nonNegative().default(0),
};

export type TvlarsOptions = OptionsOf<typeof tvlarsFields>;

/** TVLARS: LARS whose trust ratio is multiplied by φ(t) = 1/(α + e^{λ(t − d_e)}) + γ_min, t = step + 1. */
export function tvlars(options: TvlarsOptions) {
  const o = parseOptions('tvlars', tvlarsFields, options);
  const phi = (t: number) => 1 / (o.alpha + Math.exp(o.lambda * (t - o.delaySteps))) + o.gammaMin;
  return makeOptimizer('tvlars', o, larsChain('tvlars', o, phi));
}
