export { scaleByAdam, type AdamState } from './scaleByAdam.js';
export { addDecayedWeights } from './addDecayedWeights.js';
export { scaleByTrustRatio, type TrustRatioState } from './scaleByTrustRatio.js';
export { trace, type TraceState } from './trace.js';
export { scale, scaleBySchedule, scaleByLearningRate, type CountState } from './scale.js';
export { clipByGlobalNorm } from './clipByGlobalNorm.js';
export { applyIfFinite, type ApplyIfFiniteState } from './applyIfFinite.js';
export { masked } from './masked.js';
export { scaleByMup, mupScaleOf, type MupScale } from './scaleByMup.js';
