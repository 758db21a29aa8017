/**
 * The `*.lopt` checkpoint: one msgpack map (see codec.ts) holding a learned optimizer's
 * meta-parameters theta, what rebuilds the optimizer (arch + config), where it came from, and
 * optionally its evaluation results and the meta-trainer's state for an exact resume.
 */

export const CHECKPOINT_FORMAT = 'lopt';
/**
 * 2: the file is an envelope `{ format, version: 2, sha256, payload }` whose payload is the
 * msgpack of the checkpoint and sha256 its SHA-256, verified before the payload is decoded.
 * 1: the file is the checkpoint map itself (no checksum); still read.
 */
export const CHECKPOINT_VERSION = 2;
/** Versions this reader understands; a later writer bumps CHECKPOINT_VERSION and adds it here. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2];

export type CheckpointVersion = 1 | 2;

/** Files larger than this are refused unread unless `loadCheckpoint(…, { maxBytes })` says otherwise. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/** Values allowed where a section is free-form (eval, training.state): what JSON can hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Named float32 arrays, in order. Parallel arrays rather than a name → entry map so the order is
 * explicit: JS objects move integer-like keys ("0", "12") to the front, a list does not.
 * `data[i]` holds `shapes[i]`'s elements row-major (tfjs order); a scalar has shape [] and 1 value.
 */
export interface TensorTable {
  names: string[];
  shapes: number[][];
  data: Float32Array[];
}

export interface Provenance {
  /** Meta-training recipe name or path the theta came from. */
  recipe?: string;
  /** Outer (meta-training) step at which theta was saved. */
  outerStep?: number;
  /** Commit of the code that wrote the file (best effort, see gitCommit()). */
  gitCommit?: string;
  /** ISO 8601 time of writing, e.g. new Date().toISOString(). */
  createdAt: string;
  /** tfjs backend the theta was trained or written on. */
  backend?: string;
  /** Where theta came from when lopt did not train it (a converted released file). */
  source?: string;
}

/**
 * Meta-training state for an exact resume. Kept generic because the trainer defines its contents:
 * float state goes in `arrays`, everything else in `state`.
 */
export interface TrainingState {
  /** Outer-optimizer state and any other float state (e.g. 'adam/m/mlp/w0'), same layout as theta. */
  arrays: TensorTable;
  /** Estimator worker state, RNG state strings, step counters: JSON values only. */
  state: { [key: string]: JsonValue };
}

export interface Checkpoint {
  format: typeof CHECKPOINT_FORMAT;
  /** The file's version (a checkpoint built in memory may say 1; it is written as the current version). */
  version: CheckpointVersion;
  /** LearnedOptimizer.arch, e.g. 'small_fc_lopt'. */
  arch: string;
  /** LearnedOptimizer.config: with arch, it rebuilds the optimizer. Flat, finite numbers. */
  config: Record<string, number | string | boolean>;
  /** The meta-parameters, in LearnedOptimizer.thetaShapes order. */
  theta: TensorTable;
  provenance: Provenance;
  /** Evaluation results (benchmark name → metrics …), JSON values only. */
  eval?: { [key: string]: JsonValue };
  training?: TrainingState;
}
