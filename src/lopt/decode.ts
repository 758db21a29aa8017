// A learned optimizer from a checkpoint that is already in memory: from the decoded checkpoint
// (what every loader ends with) or from its bytes (a browser's fetch, a dropped file). No Node APIs.
import * as tf from '@tensorflow/tfjs-core';
import { decodeCheckpoint, type LoadOptions } from '../checkpoint/decode.js';
import type { Checkpoint } from '../checkpoint/format.js';
import { thetaFromCheckpoint } from '../checkpoint/theta.js';
import type { Optimizer } from '../optim/optimizer.js';
import { asTfjsOptimizer, type TfjsOptimizer } from '../tfjs/adapter.js';
import type { Params } from '../tree/params.js';
import { printable } from '../text/printable.js';
import { createLearnedOptimizer } from './registry.js';
import type { LearnedOptimizer, LearnedOptimizerOptions } from './types.js';

/** A learned optimizer with its meta-parameters, as a checkpoint holds it. */
export interface LoadedLearnedOptimizer {
  readonly learnedOptimizer: LearnedOptimizer;
  readonly theta: Params;
  readonly checkpoint: Checkpoint;
  /** The Optimizer for this theta (theta stays owned by this object: dispose() frees it). */
  optimizer(options?: LearnedOptimizerOptions): Optimizer;
  /** The same, as a tf.Optimizer for model.compile / model.fit. */
  asTfjsOptimizer(options?: LearnedOptimizerOptions): TfjsOptimizer;
  dispose(): void;
}

/** Checks the checkpoint's theta against the architecture's: same names, order and shapes. */
function checkTheta(label: string, lo: LearnedOptimizer, ckpt: Checkpoint): void {
  const want = Object.entries(lo.thetaShapes);
  const got = ckpt.theta;
  if (got.names.length !== want.length || want.some(([n], i) => got.names[i] !== n)) {
    throw new Error(`${label}: theta names [${printable(got.names.join(', '), 400)}] do not match ${lo.arch}'s [${want.map(([n]) => n).join(', ')}]`);
  }
  want.forEach(([name, shape], i) => {
    const s = got.shapes[i]!;
    if (s.length !== shape.length || s.some((d, j) => d !== shape[j])) {
      throw new Error(`${label}: theta '${name}' has shape [${s.join(',')}], ${lo.arch} with this config needs [${shape.join(',')}]`);
    }
  });
}

/** The learned optimizer a validated checkpoint describes, its theta checked against the architecture. */
export function learnedOptimizerFromCheckpoint(ckpt: Checkpoint, label: string): LoadedLearnedOptimizer {
  let lo: LearnedOptimizer;
  try {
    lo = createLearnedOptimizer(ckpt.arch, ckpt.config);
  } catch (e) {
    throw new Error(`${printable(label, 200)}: ${(e as Error).message}`);
  }
  checkTheta(printable(label, 200), lo, ckpt);
  const theta = thetaFromCheckpoint(ckpt.theta);
  return {
    learnedOptimizer: lo,
    theta,
    checkpoint: ckpt,
    optimizer: (options) => lo.optimizer(theta, options),
    asTfjsOptimizer: (options) => asTfjsOptimizer(lo.optimizer(theta, options)),
    dispose: () => tf.dispose(Object.values(theta)),
  };
}

/**
 * A learned optimizer from the bytes of a `.lopt` file. The bytes are untrusted: size, format,
 * version, checksum, architecture, config, shapes and values are validated before anything is
 * built; errors name `label`.
 */
export async function decodeLearnedOptimizer(
  bytes: Uint8Array | ArrayBuffer,
  label = 'checkpoint',
  options: LoadOptions = {},
): Promise<LoadedLearnedOptimizer> {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return learnedOptimizerFromCheckpoint(await decodeCheckpoint(view, label, options), label);
}
