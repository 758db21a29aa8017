import type { Schedule } from '../schedules.js';
import type { StateTree } from '../../tree/stateTree.js';
import { chain, identity, type AnyTransformation, type GradientTransformation } from '../transform.js';
import { applyIfFinite } from '../transforms/applyIfFinite.js';
import { clipByGlobalNorm } from '../transforms/clipByGlobalNorm.js';
import { clipByValue } from '../transforms/clipByValue.js';
import { masked } from '../transforms/masked.js';
import { field, matchesAny } from '../options.js';
import { Optimizer } from '../optimizer.js';
import type { LayerStatisticsReader } from '../layerStatistics.js';

export type LearningRate = number | Schedule | ((count: number) => number);

/** Options every baseline accepts besides its own. */
export const commonFields = {
  /** Clip every raw gradient element to [−clipValue, clipValue] first (optax clip). */
  clipValue: field.positive().optional(),
  /** Clip the raw gradients to this global norm before anything else (optax clip_by_global_norm). */
  clipGlobalNorm: field.positive().optional(),
  /**
   * Parameters carry a leading axis of this many independent members ([P, ...shape]); per-tensor
   * and global norms are taken per member, so one op stream steps P models.
   */
  population: field.count().optional(),
  /**
   * Skip a step whose gradients hold NaN/Inf (zero updates, state kept), at most this many times
   * in a row, then step anyway (optax apply_if_finite with max_consecutive_errors).
   */
  applyIfFinite: field.nonNegativeInteger().optional(),
};

/** `inner` applied to the tensors whose names match none of `exclude` (all tensors when empty). */
export function except<S extends StateTree>(inner: GradientTransformation<S>, exclude: readonly string[] | undefined): AnyTransformation {
  if (!exclude || exclude.length === 0) return inner;
  const excluded = matchesAny(exclude);
  return masked(inner, (name) => !excluded(name));
}

/** Refuses, at init, parameters whose first dim is not the population size. */
function populationGuard(name: string, population: number): GradientTransformation<null> {
  return {
    init(params) {
      for (const [param, t] of Object.entries(params)) {
        if (t.rank === 0 || t.shape[0] !== population) {
          throw new Error(
            `${name}: option 'population' is ${population}, but parameter '${param}' has shape [${t.shape.join(',')}] (its first dim must be ${population})`,
          );
        }
      }
      return null;
    },
    update: (updates, state) => ({ updates, state }),
  };
}

/** The baseline's chain behind the options every baseline shares: population check, then clipping (by value, then by global norm). */
export function withCommon(
  name: string,
  o: { clipValue?: number | undefined; clipGlobalNorm?: number | undefined; population?: number | undefined; applyIfFinite?: number | undefined },
  rest: AnyTransformation[],
): GradientTransformation {
  const population = o.population !== undefined;
  // clipValue joins the chain only when set, so the state paths of every other configuration
  // (what model.save writes for the optimizer) stay as they were.
  const steps = chain(
    population ? populationGuard(name, o.population!) : identity,
    ...(o.clipValue === undefined ? [] : [clipByValue(o.clipValue)]),
    o.clipGlobalNorm === undefined ? identity : clipByGlobalNorm(o.clipGlobalNorm, population),
    ...rest,
  );
  return o.applyIfFinite === undefined ? steps : applyIfFinite(steps, o.applyIfFinite);
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

export function makeOptimizer<O extends object>(
  name: string,
  options: O,
  transform: GradientTransformation,
  layerStatistics?: LayerStatisticsReader,
): Optimizer<O> {
  return new Optimizer(name, options, transform, () => serializeOptions(name, options), layerStatistics);
}
