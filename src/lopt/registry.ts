// Learned optimizers by architecture name: what a checkpoint's (arch, config) rebuilds.
import { learnableSgd, type LearnableSgdConfig } from './learnableSgd.js';
import { mlpLopt, type MlpLoptConfig } from './mlpLopt.js';
import { smallFcLopt, type SmallFcLoptConfig } from './smallFcLopt.js';
import type { LearnedOptimizer, LearnedOptimizerArch } from './types.js';
import { velo } from './velo/velo.js';
import type { VeloConfig } from './velo/config.js';
import { printable } from '../text/printable.js';

export const LEARNED_OPTIMIZERS: Readonly<Record<LearnedOptimizerArch, (config: Record<string, unknown>) => LearnedOptimizer>> = Object.freeze({
  small_fc_lopt: (config: Record<string, unknown>) => smallFcLopt(config as SmallFcLoptConfig),
  mlp_lopt: (config: Record<string, unknown>) => mlpLopt(config as MlpLoptConfig),
  learnable_sgd: (config: Record<string, unknown>) => learnableSgd(config as LearnableSgdConfig),
  velo: (config: Record<string, unknown>) => velo(config as VeloConfig),
});

export function isLearnedOptimizerArch(arch: string): arch is LearnedOptimizerArch {
  return Object.prototype.hasOwnProperty.call(LEARNED_OPTIMIZERS, arch);
}

/** Rebuilds a learned optimizer from its arch and JSON config (untrusted: both are validated). */
export function createLearnedOptimizer(arch: string, config: Record<string, unknown> = {}): LearnedOptimizer {
  if (!isLearnedOptimizerArch(arch)) {
    throw new Error(`unknown learned optimizer architecture '${printable(arch, 80)}'; allowed: ${Object.keys(LEARNED_OPTIMIZERS).join(', ')}`);
  }
  return LEARNED_OPTIMIZERS[arch](config);
}
