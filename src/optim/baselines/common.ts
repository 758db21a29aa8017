import type { Schedule } from '../schedules.js';
import type { StateTree } from '../../tree/stateTree.js';
import { chain, identity, type GradientTransformation } from '../transform.js';
import { clipByGlobalNorm } from '../transforms/clipByGlobalNorm.js';
import { masked } from '../transforms/masked.js';
import { field, matchesAny } from '../options.js';
import { Optimizer } from '../optimizer.js';

export type LearningRate = number | Schedule | ((count: number) => number);

/** Options every baseline accepts besides its own. */
export const commonFields = {
  /** Clip the raw gradients to this global norm before anything else (optax clip_by_global_norm). */
  clipGlobalNorm: field.positive().optional(),
};

/** `inner` applied to the tensors whose names match none of `exclude` (all tensors when empty). */
export function except<S extends StateTree>(
  inner: GradientTransformation<S>,
  exclude: readonly string[] | undefined,
): GradientTransformation<any> {
  if (!exclude || exclude.length === 0) return inner;
  const excluded = matchesAny(exclude);
  return masked(inner, (name) => !excluded(name));
}

export function withClipping(clip: number | undefined, rest: GradientTransformation<any>[]): GradientTransformation {
  return chain(clip === undefined ? identity : clipByGlobalNorm(clip), ...rest);
}

/** The options as JSON: schedules become their configs; custom functions cannot be serialized. */
export function serializeOptions(name: string, options: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (typeof value === 'function') {
      const config = (value as { config?: unknown }).config;
      if (config === undefined) {
        throw new Error(
          `${name}: option '${key}' is a custom function and cannot be serialized; ` +
            `use a lopt schedule (constantSchedule, warmupCosine, warmupPolynomial, mlperfPoly2) or a plain value`,
        );
      }
      out[key] = config;
    } else {
      out[key] = value;
    }
  }
  return out;
}

export function makeOptimizer<O extends object>(name: string, options: O, transform: GradientTransformation): Optimizer<O> {
  return new Optimizer(name, options, transform, () => serializeOptions(name, options));
}
