/** The platform-independent part of lopt: what both the Node entry (index.ts) and the browser entry (browser.ts) export. */
export type { Params } from './tree/params.js';
export { applyUpdates, disposeParams, flattenParams, globalNorm, mapParams, parameterCount, unflattenParams, zipParams } from './tree/params.js';
export type { StateTree } from './tree/stateTree.js';
export { disposeReplaced, disposeState } from './tree/stateTree.js';

export { chain, identity, type GradientTransformation, type TransformResult, type UpdateContext } from './optim/transform.js';
export * from './optim/transforms/index.js';
export { constantSchedule, mlperfPoly2, scheduleFromConfig, warmupCosine, warmupPolynomial, type Schedule, type ScheduleConfig } from './optim/schedules.js';
export { Optimizer, type OptimizerState, type ParamSpec } from './optim/optimizer.js';
export { sgd, momentum, nesterov, type SgdOptions } from './optim/baselines/sgd.js';
export { adam, adamw, muadam, type AdamOptions, type MuAdamOptions } from './optim/baselines/adam.js';
export { lamb, type LambOptions } from './optim/baselines/lamb.js';
export { lars, tvlars, type LarsOptions, type TvlarsOptions } from './optim/baselines/lars.js';
export { mkor, mkorlamb, type MkorOptions } from './optim/baselines/mkor.js';
export { lossGradsAndLayerStatistics, NO_TAP, type LayerTap } from './optim/layerTap.js';
export type { LayerSpec, LayerStatistics, LayerStatisticsMap, LayerStatisticsSchedule } from './optim/layerStatistics.js';
export { OPTIMIZERS, READS_LAYER_STATISTICS, createOptimizer, isOptimizerName, type OptimizerName } from './optim/registry.js';
export { TfjsOptimizer, asTfjsOptimizer } from './tfjs/adapter.js';
export { MupReadout, mupMlp, mupScaleFor, type MupMlpOptions } from './tfjs/mup.js';

export type { LearnedOptimizer, LearnedOptimizerArch, LearnedOptimizerOptions } from './lopt/types.js';
export { smallFcLopt } from './lopt/smallFcLopt.js';
export { velo } from './lopt/velo/velo.js';
export type { VeloConfig } from './lopt/velo/config.js';
export { mlpLopt } from './lopt/mlpLopt.js';
export { LEARNED_OPTIMIZERS, createLearnedOptimizer } from './lopt/registry.js';
export { decodeLearnedOptimizer, learnedOptimizerFromCheckpoint, type LoadedLearnedOptimizer } from './lopt/decode.js';
export { decodeCheckpoint, type LoadOptions } from './checkpoint/decode.js';
export { CheckpointError } from './checkpoint/error.js';
export type { Checkpoint } from './checkpoint/format.js';

export { Rng } from './random/rng.js';

/** Parameter-name patterns for biases and normalization layers, excluded from decay/adaptation in the usual configs. */
export const BIAS_AND_NORM = ['bias', 'norm', 'gamma', 'beta'] as const;
