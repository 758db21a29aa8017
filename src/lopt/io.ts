import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { CHECKPOINT_VERSION, loadCheckpoint, saveCheckpoint, thetaToCheckpoint, gitCommit } from '../checkpoint/index.js';
import type { Checkpoint, Provenance } from '../checkpoint/format.js';
import type { Params } from '../tree/params.js';
import type { LearnedOptimizer } from './types.js';
import { learnedOptimizerFromCheckpoint, type LoadedLearnedOptimizer } from './decode.js';
import { readReleasedVelo } from './velo/releasedFile.js';

export { decodeLearnedOptimizer, learnedOptimizerFromCheckpoint, type LoadedLearnedOptimizer } from './decode.js';

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
  return learnedOptimizerFromCheckpoint(await readLearnedOptimizerFile(path), path);
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
