/** The `*.lopt` checkpoint format: types, atomic writer, validating reader, theta conversion. */
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  DEFAULT_MAX_BYTES,
  SUPPORTED_VERSIONS,
  type Checkpoint,
  type JsonValue,
  type Provenance,
  type TensorTable,
  type TrainingState,
} from './format.js';
export { CheckpointError } from './error.js';
export { validateCheckpoint, type ValidateOptions } from './validate.js';
export { saveCheckpoint } from './write.js';
export { loadCheckpoint } from './read.js';
export { decodeCheckpoint, type LoadOptions } from './decode.js';
export { thetaFromCheckpoint, thetaToCheckpoint } from './theta.js';
export { gitCommit } from './gitCommit.js';
