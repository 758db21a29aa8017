import { adam, adamw, muadam } from './baselines/adam.js';
import { lamb } from './baselines/lamb.js';
import { lars, tvlars } from './baselines/lars.js';
import { mkor, mkorlamb } from './baselines/mkor.js';
import { momentum, nesterov, sgd } from './baselines/sgd.js';
import type { Optimizer } from './optimizer.js';
import { scheduleFromConfig } from './schedules.js';

/** Every hand-designed optimizer by name. */
export const OPTIMIZERS = { sgd, momentum, nesterov, adam, adamw, muadam, lars, lamb, tvlars, mkor, mkorlamb } as const;
export type OptimizerName = keyof typeof OPTIMIZERS;

/** The optimizers that read layer statistics (UpdateContext.layerStatistics) and so need a task or loop that computes them. */
export const READS_LAYER_STATISTICS: ReadonlySet<OptimizerName> = new Set<OptimizerName>(['mkor', 'mkorlamb']);

export function isOptimizerName(name: string): name is OptimizerName {
  return Object.prototype.hasOwnProperty.call(OPTIMIZERS, name);
}

/**
 * Builds an optimizer from its name and JSON options (as toConfig() writes them: a learning-rate
 * schedule is its config object). Untrusted input: names and options are validated.
 */
export function createOptimizer(name: string, options: Record<string, unknown> = {}): Optimizer {
  if (!isOptimizerName(name)) {
    throw new Error(`unknown optimizer '${name}'; allowed: ${Object.keys(OPTIMIZERS).join(', ')}`);
  }
  const revived: Record<string, unknown> = { ...options };
  const lr = revived.learningRate;
  if (typeof lr === 'object' && lr !== null) {
    try {
      revived.learningRate = scheduleFromConfig(lr);
    } catch (e) {
      throw new Error(`${name}: option 'learningRate': ${(e as Error).message}`);
    }
  }
  return (OPTIMIZERS[name] as (o: unknown) => Optimizer)(revived);
}
