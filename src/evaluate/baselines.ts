// The tuned baselines of `lopt bench`: every one gets the same budget — a log-spaced learning-rate
// grid around its usual value, the same warmup + cosine schedule, the same seeds — after "A Large
// Batch Optimizer Reality Check". All grid points of one optimizer run as one population.
import { OPTIMIZERS, type OptimizerName } from '../optim/registry.js';
import { warmupCosine, warmupPolynomial, type Schedule } from '../optim/schedules.js';
import { chain } from '../optim/transform.js';
import { Optimizer } from '../optim/optimizer.js';
import { scaleByMember } from '../optim/transforms/scaleByMember.js';
import type { LayerSpec } from '../optim/layerStatistics.js';

/** Center of each baseline's grid: its usual learning rate. */
export const GRID_CENTER: Readonly<Record<OptimizerName, number>> = Object.freeze({
  sgd: 0.1,
  momentum: 0.1,
  nesterov: 0.1,
  adam: 3e-3,
  adamw: 3e-3,
  muadam: 3e-3,
  lars: 1,
  tvlars: 1,
  lamb: 3e-3,
  mkor: 0.1,
  mkorlamb: 3e-3,
});

/** Biases and normalization parameters: no weight decay and no trust ratio (the references' usual exclusions). */
const NO_DECAY = ['bias$', '/b$', '^b$', 'norm\\d*/scale$', 'final_norm/'];

/** `budget` learning rates half a decade apart, centered (geometrically) on `center`. */
export function learningRateGrid(center: number, budget: number): number[] {
  if (!Number.isInteger(budget) || budget < 1) throw new Error(`budget must be an integer >= 1; got ${budget}`);
  return Array.from({ length: budget }, (_, i) => {
    const lr = center * Math.pow(10, (i - (budget - 1) / 2) / 2);
    return Number(lr.toPrecision(6));
  });
}

/** A suite entry's schedule for its baselines, as plain data (tasks/suites.ts `schedule`). */
export type BenchScheduleSpec = { type: 'warmupCosine'; warmupFraction: number } | { type: 'warmupPolynomial'; warmupFraction: number; power: number };

/**
 * The schedule's shape (peak 1) every baseline gets: by default warmup over the first 5% of the
 * run, then cosine to 0; or BERT's linear warmup then polynomial decay to 0 when the suite says so.
 */
export function benchSchedule(steps: number, spec: BenchScheduleSpec = { type: 'warmupCosine', warmupFraction: 0.05 }): Schedule {
  const warmupSteps = Math.max(1, Math.round(spec.warmupFraction * steps));
  return spec.type === 'warmupCosine'
    ? warmupCosine({ peak: 1, warmupSteps, totalSteps: steps, init: 0, end: 0 })
    : warmupPolynomial({ peak: 1, warmupSteps, totalSteps: steps, power: spec.power, end: 0 });
}

/**
 * The baseline with the schedule's shape (peak 1), then each member's update multiplied by its
 * learning rate. Every baseline's update is linear in its learning rate when the schedule's
 * shape is shared (LARS's trace included: it accumulates lr-scaled terms), so member i steps
 * exactly as a run with peak lrs[i] would, up to float rounding.
 */
export function baselineForGrid(
  name: OptimizerName,
  steps: number,
  lrs: readonly number[],
  seedsPerLr: number,
  mupScale: Readonly<Record<string, number>>,
  schedule?: BenchScheduleSpec,
  /** The task's layers (Task.layers): MKOR preconditions these and is refused on a task without them. */
  layers?: readonly LayerSpec[],
): Optimizer {
  const population = lrs.length * seedsPerLr;
  const factors = lrs.flatMap((lr) => new Array<number>(seedsPerLr).fill(lr));
  const learningRate = benchSchedule(steps, schedule);
  const common = { learningRate, population };
  let base: Optimizer;
  switch (name) {
    case 'muadam':
      base = OPTIMIZERS.muadam({ ...common, mupScale: { ...mupScale } });
      break;
    case 'adamw':
      base = OPTIMIZERS.adamw({ ...common, excludeFromWeightDecay: NO_DECAY });
      break;
    case 'lars':
    case 'tvlars':
      base = OPTIMIZERS[name]({ ...common, weightDecay: 1e-4, excludeFromWeightDecay: NO_DECAY, excludeFromTrustRatio: NO_DECAY });
      break;
    case 'lamb':
      base = OPTIMIZERS.lamb({ ...common, weightDecay: 0.01, excludeFromWeightDecay: NO_DECAY });
      break;
    case 'mkor':
    case 'mkorlamb': {
      if (!layers || layers.length === 0) throw new Error(`${name} needs a task that reports its layers' statistics (mlp, conv, transformer, mlm tasks)`);
      // mkor: the authors' ResNet configuration (SGD momentum 0.9, factors refreshed at each of the
      // first 10 steps); mkorlamb: their BERT one (LAMB, global-norm clip 1, weight decay 0.01).
      base =
        name === 'mkor'
          ? OPTIMIZERS.mkor({ ...common, layers: layers.map((l) => ({ ...l })), warmupSteps: 10 })
          : OPTIMIZERS.mkorlamb({ ...common, layers: layers.map((l) => ({ ...l })), weightDecay: 0.01, excludeFromWeightDecay: NO_DECAY });
      break;
    }
    default:
      base = (OPTIMIZERS[name] as (o: object) => Optimizer)(common);
  }
  return new Optimizer(`${name}[lr grid]`, { lrs: [...lrs] }, chain(base.transform, scaleByMember(factors)), () => ({ lrs: [...lrs] }), base.layerStatistics);
}
