// A continuation file: the small state a meta-training run continues from on any machine —
// theta, the outer optimizer's state, the outer step and the recipe hash, plus the segments run so
// far (commit, steps, wall time) and the per-step meta-loss, meta-gradient norm and time — without the particles' inner state, which a continued run
// restarts as after a resample. It is an ordinary `.lopt` checkpoint (validated on load: it is
// untrusted input) whose training state says `kind: 'continuation'`; ~30 KB for μLO, small
// enough to commit before a machine goes away.
import { existsSync } from 'node:fs';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/index.js';
import type { Checkpoint } from '../checkpoint/format.js';
import type { LearnedOptimizer } from '../lopt/types.js';

/** One stretch of meta-training on one machine. */
export interface Segment {
  commit: string;
  fromStep: number;
  toStep: number;
  /** Sum of the segment's outer-step times. */
  seconds: number;
  backend: string;
}

const KIND = 'continuation';

/** Per outer step since step 0, so that a run's curves survive the machines it ran on. */
export interface History {
  metaLoss: number[];
  metaGradNorm: number[];
  seconds: number[];
}

const HISTORY_KEYS = ['metaLoss', 'metaGradNorm', 'seconds'] as const;

function parseSegments(path: string, value: unknown): Segment[] {
  if (!Array.isArray(value) || value.length > 100_000) throw new Error(`${path}: training.state.segments must be a list of segments`);
  return value.map((v, i) => {
    const s = v as Record<string, unknown>;
    const ok =
      typeof s === 'object' &&
      s !== null &&
      typeof s['commit'] === 'string' &&
      /^([0-9a-f]{7,64}|unknown)$/.test(s['commit']) &&
      typeof s['backend'] === 'string' &&
      /^[a-z]{1,32}$/.test(s['backend']) &&
      [s['fromStep'], s['toStep']].every((x) => Number.isSafeInteger(x) && (x as number) >= 0) &&
      (s['toStep'] as number) >= (s['fromStep'] as number) &&
      typeof s['seconds'] === 'number' &&
      Number.isFinite(s['seconds']) &&
      s['seconds'] >= 0;
    if (!ok) {
      throw new Error(`${path}: segment ${i} is not { commit: hex or 'unknown', fromStep ≤ toStep (integers ≥ 0), seconds ≥ 0, backend: a backend name }`);
    }
    return {
      commit: s['commit'] as string,
      fromStep: s['fromStep'] as number,
      toStep: s['toStep'] as number,
      seconds: s['seconds'] as number,
      backend: s['backend'] as string,
    };
  });
}

/** The continuation at `path`, or null when there is no file yet. Refuses another recipe's or architecture's file. */
export async function readContinuation(
  path: string,
  lo: LearnedOptimizer,
  recipeHash: string,
): Promise<{ checkpoint: Checkpoint; segments: Segment[]; history: History } | null> {
  if (!existsSync(path)) return null;
  const checkpoint = await loadCheckpoint(path);
  const state = checkpoint.training?.state;
  if (state === undefined || state['kind'] !== KIND) throw new Error(`${path} is not a continuation file (a run's checkpoint continues with --resume RUN_DIR)`);
  if (state['recipeHash'] !== recipeHash) {
    throw new Error(
      `${path} continues another recipe (recipe hash ${JSON.stringify(String(state['recipeHash']).slice(0, 80))}, this recipe ${recipeHash}); ` +
        'a changed recipe starts a new run (use another --continuation file)',
    );
  }
  if (checkpoint.arch !== lo.arch) throw new Error(`${path} holds a ${checkpoint.arch}, the recipe trains a ${lo.arch}`);
  const segments = parseSegments(path, state['segments']);
  const last = segments[segments.length - 1];
  if (last !== undefined && last.toStep !== state['step']) {
    throw new Error(`${path}: its last segment ends at step ${last.toStep} but its state is at step ${String(state['step'])}`);
  }
  const arrays = checkpoint.training!.arrays;
  const history = {} as History;
  for (const key of HISTORY_KEYS) {
    const i = arrays.names.indexOf(`history/${key}`);
    if (i < 0 || arrays.data[i]!.length !== state['step']) {
      throw new Error(`${path}: training.arrays must hold history/${key} with one value per outer step (${String(state['step'])})`);
    }
    history[key] = Array.from(arrays.data[i]!);
  }
  return { checkpoint, segments, history };
}

/** Writes `checkpoint` (theta and the outer state, no estimator state) as a continuation, atomically. */
export async function writeContinuation(path: string, checkpoint: Checkpoint, segments: Segment[], history: History): Promise<void> {
  if (checkpoint.training === undefined) throw new Error('writeContinuation: the checkpoint holds no outer state');
  checkpoint.training.state = { ...checkpoint.training.state, kind: KIND, segments: segments.map((s) => ({ ...s })) };
  const arrays = checkpoint.training.arrays;
  for (const key of HISTORY_KEYS) {
    arrays.names.push(`history/${key}`);
    arrays.shapes.push([history[key].length]);
    arrays.data.push(Float32Array.from(history[key]));
  }
  await saveCheckpoint(path, checkpoint);
}
