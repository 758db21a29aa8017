// Recipe → gradient estimators. Each estimator's random streams hang off its own root
// (recipe seed + index), so adding an estimator does not change the draws of the others.
import { familyFromSpec } from '../../tasks/families.js';
import type { LearnedOptimizer } from '../lopt/types.js';
import type { GradientEstimator } from './estimator.js';
import { fullEsEstimator } from './fullEsEstimator.js';
import type { EpisodeLength } from './particles.js';
import type { EstimatorSpec, Recipe } from './recipe.js';
import { thetaSize } from './thetaVector.js';
import { truncatedEstimator } from './truncatedEstimator.js';

function lengthsOf(spec: EstimatorSpec): EpisodeLength {
  const l = spec.episodeLength;
  return 'steps' in l ? { kind: 'fixed', steps: l.steps } : { kind: 'log-uniform', min: l.min, max: l.max };
}

export function buildEstimators(recipe: Recipe, lo: LearnedOptimizer): GradientEstimator[] {
  const lopt = { arch: lo.arch, config: { ...lo.config } };
  const n = thetaSize(lo);
  return recipe.estimators.map((spec, i) => {
    const root = `lopt/meta-train/${recipe.seed}/estimator-${i}`;
    const family = familyFromSpec(spec.family);
    const shared = { family, lopt, root, particles: spec.particles, particlesPerUnit: spec.particlesPerUnit, sigma: spec.sigma, thetaSize: n };
    if (spec.type === 'full-es') {
      return fullEsEstimator({
        ...shared,
        lengths: lengthsOf(spec),
        metaLoss: spec.metaLoss,
        freshBatches: spec.freshBatches,
        freshSplit: spec.freshSplit,
        ...(spec.signScale !== undefined ? { signScale: spec.signScale } : {}),
      });
    }
    return truncatedEstimator({
      ...shared,
      kind: spec.type,
      truncationLength: spec.truncationLength,
      lengths: lengthsOf(spec),
      initialOffset: spec.initialOffset,
      resampleEvery: spec.resampleEvery,
      lossWeighting: spec.lossWeighting ?? 'uniform',
    });
  });
}
