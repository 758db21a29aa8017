import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { CHECKPOINT_VERSION, loadCheckpoint, saveCheckpoint, thetaFromCheckpoint, thetaToCheckpoint, gitCommit } from '../checkpoint/index.js';
import type { Checkpoint, Provenance } from '../checkpoint/format.js';
import type { Optimizer } from '../optim/optimizer.js';
import { asTfjsOptimizer, type TfjsOptimizer } from '../tfjs/adapter.js';
import type { Params } from '../tree/params.js';
import { createLearnedOptimizer } from './registry.js';
import type { LearnedOptimizer, LearnedOptimizerOptions } from './types.js';
import { printable } from '../text/printable.js';
import { readReleasedVelo } from './velo/releasedFile.js';

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

/** Where shipped checkpoints live: the package's checkpoints/ folder (from src/ or dist/src/). */
export function shippedCheckpointDir(): string {
  const up = import.meta.url.includes('/dist/') ? '../../../' : '../../';
  return fileURLToPath(new URL(`${up}checkpoints/`, import.meta.url));
}

/** Names of the shipped checkpoints (`checkpoints/<name>.lopt`), sorted. */
export function shippedCheckpointNames(): string[] {
  const dir = shippedCheckpointDir();
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.lopt'))
        .map((f) => f.slice(0, -5))
        .sort()
    : [];
}

function resolveCheckpointPath(pathOrName: string): string {
  if (existsSync(pathOrName)) return pathOrName;
  if (/^[A-Za-z0-9._-]+$/.test(pathOrName) && !pathOrName.endsWith('.lopt')) {
    const dir = shippedCheckpointDir();
    const candidate = `${dir}${pathOrName}.lopt`;
    if (existsSync(candidate)) return candidate;
    const shipped = shippedCheckpointNames();
    throw new Error(
      `no checkpoint file '${pathOrName}' and no shipped checkpoint of that name in ${dir} ` +
        `(shipped: ${shipped.length > 0 ? shipped.join(', ') : 'none yet'})`,
    );
  }
  throw new Error(`no checkpoint file '${pathOrName}'`);
}

/** Checks the checkpoint's theta against the architecture's: same names, order and shapes. */
function checkTheta(file: string, lo: LearnedOptimizer, ckpt: Checkpoint): void {
  const want = Object.entries(lo.thetaShapes);
  const got = ckpt.theta;
  if (got.names.length !== want.length || want.some(([n], i) => got.names[i] !== n)) {
    throw new Error(`${file}: theta names [${printable(got.names.join(', '), 400)}] do not match ${lo.arch}'s [${want.map(([n]) => n).join(', ')}]`);
  }
  want.forEach(([name, shape], i) => {
    const s = got.shapes[i]!;
    if (s.length !== shape.length || s.some((d, j) => d !== shape[j])) {
      throw new Error(`${file}: theta '${name}' has shape [${s.join(',')}], ${lo.arch} with this config needs [${shape.join(',')}]`);
    }
  });
}

/**
 * A learned optimizer's file as a checkpoint: a `.lopt` file, or a released VeLO `params` file
 * (learned_optimization's Flax msgpack, with its config.gin when beside it). Files not named
 * `*.lopt` are tried as a released file first, then as a `.lopt`; the error names both reasons.
 */
export async function readLearnedOptimizerFile(path: string): Promise<Checkpoint> {
  if (path.endsWith('.lopt')) return loadCheckpoint(path);
  try {
    return await readReleasedVelo(path);
  } catch (released) {
    try {
      return await loadCheckpoint(path);
    } catch (lopt) {
      throw new Error(`${path}: neither a lopt checkpoint (${(lopt as Error).message}) nor a released VeLO params file (${(released as Error).message})`);
    }
  }
}

/**
 * Loads a learned optimizer from a `.lopt` file, a released VeLO `params` file, or a shipped one
 * by name ('mulo-mnist'). The file is untrusted: format, version, architecture, config, shapes and
 * values are validated before anything is built.
 */
export async function loadLearnedOptimizer(pathOrName: string): Promise<LoadedLearnedOptimizer> {
  const path = resolveCheckpointPath(pathOrName);
  const ckpt = await readLearnedOptimizerFile(path);
  let lo: LearnedOptimizer;
  try {
    lo = createLearnedOptimizer(ckpt.arch, ckpt.config);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  checkTheta(path, lo, ckpt);
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

/** The checkpoint of a learned optimizer's theta (in thetaShapes order) with its provenance. */
export async function learnedOptimizerCheckpoint(
  lo: LearnedOptimizer,
  theta: Params,
  extra: { provenance?: Partial<Provenance>; eval?: Checkpoint['eval'] } = {},
): Promise<Checkpoint> {
  const ordered: Params = {};
  for (const name of Object.keys(lo.thetaShapes)) {
    const t = theta[name];
    if (!t) throw new Error(`saveLearnedOptimizer: theta has no '${name}' (${lo.arch} needs ${Object.keys(lo.thetaShapes).join(', ')})`);
    ordered[name] = t;
  }
  const commit = await gitCommit();
  return {
    format: 'lopt',
    version: CHECKPOINT_VERSION,
    arch: lo.arch,
    config: { ...lo.config },
    theta: thetaToCheckpoint(ordered),
    provenance: {
      createdAt: new Date().toISOString(),
      backend: tf.getBackend(),
      ...(commit ? { gitCommit: commit } : {}),
      ...extra.provenance,
    },
    ...(extra.eval ? { eval: extra.eval } : {}),
  };
}

/** Writes a learned optimizer's theta as a `.lopt` checkpoint (atomically). */
export async function saveLearnedOptimizer(
  path: string,
  lo: LearnedOptimizer,
  theta: Params,
  extra: { provenance?: Partial<Provenance>; eval?: Checkpoint['eval'] } = {},
): Promise<void> {
  await saveCheckpoint(path, await learnedOptimizerCheckpoint(lo, theta, extra));
}
