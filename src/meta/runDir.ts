// A meta-training run's folder: the recipe it runs, its checkpoints (the last K kept), the final
// theta and a JSON-lines metrics file.
import { access, constants, mkdir, readdir, readFile, rm, stat, truncate, writeFile, appendFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadCheckpoint } from '../checkpoint/index.js';
import type { Checkpoint } from '../checkpoint/format.js';

export const CHECKPOINT_DIR = 'checkpoints';

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}.lopt`;
}

export function runPaths(runDir: string) {
  return {
    recipe: join(runDir, 'recipe.json'),
    checkpoints: join(runDir, CHECKPOINT_DIR),
    metrics: join(runDir, 'metrics.jsonl'),
    theta: join(runDir, 'theta.lopt'),
  };
}

/**
 * mkdir -p, one level at a time from the nearest existing ancestor, so that a path on a virtual
 * file system (/proc/sys/x) fails at once: Node's recursive mkdir loops forever there.
 */
export async function makeDirs(path: string): Promise<void> {
  const missing: string[] = [];
  let at = resolve(path);
  for (;;) {
    try {
      await stat(at);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.push(at);
      const up = dirname(at);
      if (up === at) break;
      at = up;
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** Temp files of checkpoint writes that a killed process left behind (write.ts names them). */
export async function removeStaleTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) if (/^\..+\.lopt\.\d+\.[0-9a-f]+\.tmp$/.test(n)) await rm(join(dir, n), { force: true });
}

/** Creates the run folder and proves it writable before any work starts. */
export async function prepareRunDir(runDir: string): Promise<void> {
  const paths = runPaths(runDir);
  try {
    await makeDirs(paths.checkpoints);
    await access(runDir, constants.W_OK);
    await access(paths.checkpoints, constants.W_OK);
  } catch (e) {
    throw new Error(`meta-train: output folder ${runDir} cannot be created or written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Checkpoint files of a run, newest first. */
export async function listCheckpoints(runDir: string): Promise<{ step: number; path: string }[]> {
  const dir = runPaths(runDir).checkpoints;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^step-(\d+)\.lopt$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), path: join(dir, m[0]) }))
    .sort((a, b) => b.step - a.step);
}

/**
 * Thrown by a `use` callback of newestCheckpoint when no older checkpoint can help either (the
 * run folder belongs to another recipe): it stops the search instead of falling back.
 */
export class ResumeRefusedError extends Error {
  override readonly name = 'ResumeRefusedError';
}

/**
 * The newest checkpoint that loads, validates and that `use` accepts, with what `use` made of
 * it. A newer one that is corrupt or whose training state `use` refuses (it throws) is skipped
 * with a warning naming the file (e.g. a kill during a write on a file system without atomic
 * rename), never silently; a ResumeRefusedError from `use` ends the search at once.
 */
export async function newestCheckpoint<T>(
  runDir: string,
  warn: (message: string) => void,
  use: (checkpoint: Checkpoint, entry: { step: number; path: string }) => T,
): Promise<{ step: number; path: string; checkpoint: Checkpoint; used: T }> {
  const list = await listCheckpoints(runDir);
  if (list.length === 0) {
    throw new Error(`meta-train --resume: ${runDir} holds no checkpoint (looked for ${join(runDir, CHECKPOINT_DIR, 'step-*.lopt')})`);
  }
  const problems: string[] = [];
  for (const entry of list) {
    let checkpoint: Checkpoint;
    let used: T;
    try {
      checkpoint = await loadCheckpoint(entry.path);
      if (checkpoint.training === undefined) throw new Error('it holds no training state');
      used = use(checkpoint, entry);
    } catch (e) {
      if (e instanceof ResumeRefusedError) throw e;
      problems.push(`${entry.path} is unusable (${(e as Error).message})`);
      continue;
    }
    if (problems.length > 0) warn(`resuming from the older checkpoint ${entry.path}: ${problems.join('; ')}`);
    return { ...entry, checkpoint, used };
  }
  throw new Error(`meta-train --resume: no usable checkpoint in ${runDir}: ${problems.join('; ')}`);
}

/** Removes all but the newest `keep` checkpoints. */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const list = await listCheckpoints(runDir);
  for (const old of list.slice(keep)) await rm(old.path, { force: true });
  // The folder is locked by this process (runLock.ts): any temp file in it is a dead write's.
  await removeStaleTempFiles(runPaths(runDir).checkpoints);
}

/** Metrics lines up to and including `step` (a resumed run rewrites what came after its checkpoint). */
export async function trimMetrics(runDir: string, step: number): Promise<void> {
  const path = runPaths(runDir).metrics;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return;
  }
  const kept = text.split('\n').filter((line) => {
    if (line.trim() === '') return false;
    try {
      return (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  await truncate(path, 0);
  if (kept.length > 0) await writeFile(path, `${kept.join('\n')}\n`);
}

export async function appendMetrics(runDir: string, record: Record<string, unknown>): Promise<void> {
  await appendFile(runPaths(runDir).metrics, `${JSON.stringify(record)}\n`);
}
