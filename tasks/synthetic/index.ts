export { quadraticTask, quadraticName, parseQuadraticName, type QuadraticConfig, type QuadraticInstance, type QuadraticTask } from './quadratic.js';
export {
  noisyQuadraticTask,
  noisyQuadraticName,
  parseNoisyQuadraticName,
  type NoisyQuadraticConfig,
  type NoisyQuadraticInstance,
  type NoisyQuadraticTask,
} from './noisyQuadratic.js';
export { rosenbrockTask, rosenbrockName, parseRosenbrockName, rosenbrockStart, rosenbrockValue, type RosenbrockConfig } from './rosenbrock.js';
export {
  logisticRegressionTask,
  logisticRegressionName,
  parseLogisticRegressionName,
  type LogisticRegressionConfig,
  type LogisticRegressionInstance,
  type LogisticRegressionTask,
} from './logisticRegression.js';
export { RELATIVE_LOSS_MAX } from './normalizers.js';
