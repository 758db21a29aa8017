// The MetaTrainer: estimators → averaged meta-gradient → outer AdamW → theta, with periodic atomic
// checkpoints that hold everything needed to continue bit-identically, and typed events for
// whoever listens (the dashboard, the plain log, tests). Knows nothing of the terminal.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { gitCommit, saveCheckpoint } from '../checkpoint/index.js';
import { learnedOptimizerCheckpoint } from '../lopt/io.js';
import type { Checkpoint, JsonValue, TensorTable } from '../checkpoint/format.js';
import { createLearnedOptimizer } from '../lopt/registry.js';
import type { LearnedOptimizer } from '../lopt/types.js';
import { adamw } from '../optim/baselines/adam.js';
import type { Optimizer, OptimizerState } from '../optim/optimizer.js';
import { warmupCosine, type Schedule } from '../optim/schedules.js';
import { printable } from '../text/printable.js';
import { disposeState, stateLeaves, type StateTree } from '../tree/stateTree.js';
import { buildEstimators } from './buildEstimators.js';
import { acquireLock } from './runLock.js';
import type { EstimateResult, EstimatorState, GradientEstimator, RunUnit } from './estimator.js';
import type { MetaTrainListener } from './events.js';
import { readContinuation, writeContinuation, type History, type Segment } from './continuation.js';
import { recipeHash, type Recipe } from './recipe.js';
import {
  appendMetrics,
  checkpointName,
  makeDirs,
  newestCheckpoint,
  prepareRunDir,
  pruneCheckpoints,
  ResumeRefusedError,
  removeStaleTempFiles,
  runPaths,
  trimMetrics,
} from './runDir.js';
import { flattenTheta, thetaSize, unflattenTheta } from './thetaVector.js';
import { decodeState, encodeState, type PlainLeaf } from '../tree/stateCodec.js';

/**
 * With a continuation file, theta is also kept every this many outer steps, beside it in
 * `<file>.snapshots/step-*.lopt` (≈ 11 KB each): the candidates of model selection, which a run
 * that moves between machines would otherwise lose.
 */
export const SNAPSHOT_EVERY = 500;

export function snapshotDir(continuation: string): string {
  return `${continuation.replace(/\.lopt$/, '')}.snapshots`;
}

/** DESIGN.md: a NaN meta-loss is reported as 20. */
export const NAN_META_LOSS = 20;

export interface MetaTrainOptions {
  recipe: Recipe;
  runDir: string;
  /** Continue from the newest usable checkpoint in runDir. */
  resume?: boolean;
  run: RunUnit;
  workers: number;
  /** Where units go when not to local workers: the queue's URL without credentials (run-start shows it). */
  queue?: string;
  backend: string;
  onEvent?: MetaTrainListener;
  /** Aborting stops the run after the current outer step, with a checkpoint. */
  signal?: AbortSignal;
  /** Stop (as if aborted) once this many outer steps are done; for tests of interrupted runs. */
  stopAfter?: number;
  /** Wall clock in ms (tests may fake it for the every-M-minutes policy). */
  now?: () => number;
  /**
   * A continuation file (continuation.ts): start from it when it exists (theta, outer state and
   * step; particles restart as after a resample), and rewrite it at every checkpoint with this
   * segment added. It is small, so a run can be committed and continued on another machine.
   */
  continuation?: string;
  /** With a continuation: keep theta every this many outer steps (default SNAPSHOT_EVERY). */
  snapshotEvery?: number;
}

export interface MetaTrainResult {
  status: 'done' | 'stopped' | 'failed';
  step: number;
  theta: Float32Array;
  lastCheckpoint: string | null;
  error?: Error;
}

/**
 * Everything a meta-training run carries from one outer step to the next, as plain data and the
 * outer optimizer's state: a step that fails is simply not committed.
 */
interface RunState {
  step: number;
  theta: Float32Array;
  opt: OptimizerState;
  /** Each estimator's worker state, in recipe order. */
  estimators: EstimatorState[];
}

type OuterState = Omit<RunState, 'estimators'>;

function outerOptimizer(recipe: Recipe): { opt: Optimizer; schedule: Schedule } {
  const o = recipe.outer;
  const schedule = warmupCosine({ peak: o.peakLr, warmupSteps: o.warmupSteps, totalSteps: recipe.outerSteps, init: 0, end: o.endLr });
  return {
    opt: adamw({
      learningRate: schedule,
      weightDecay: o.weightDecay,
      clipGlobalNorm: o.clipGlobalNorm,
      ...(o.clipValue !== undefined ? { clipValue: o.clipValue } : {}),
    }),
    schedule,
  };
}

/** Mean of the estimators' gradients; NaN/Inf entries → 0 (DESIGN.md). */
function averageGradient(results: EstimateResult[], n: number): Float32Array {
  const g = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (const r of results) s += r.grad[j]!;
    const v = s / results.length;
    g[j] = Number.isFinite(v) ? v : 0;
  }
  return g;
}

function norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

function flatTable(arrays: Record<string, Float32Array>): TensorTable {
  const names = Object.keys(arrays);
  return { names, shapes: names.map((n) => [arrays[n]!.length]), data: names.map((n) => arrays[n]!) };
}

/**
 * Runs (or resumes, or continues) a meta-training run. The run folder, and the continuation file
 * when there is one, are locked for the run's duration (runLock.ts).
 */
export async function metaTrain(options: MetaTrainOptions): Promise<MetaTrainResult> {
  await prepareRunDir(options.runDir);
  const lost = (e: Error) => options.onEvent?.({ type: 'warning', message: `the lock was lost (${e.message}); another process may be writing the same files` });
  const locks = [await acquireLock(options.runDir, 'run folder', lost)];
  try {
    if (options.continuation !== undefined) {
      await makeDirs(dirname(options.continuation));
      locks.push(await acquireLock(options.continuation, 'continuation file', lost));
    }
    // Locked: temp files of writes killed with an earlier process can go.
    await removeStaleTempFiles(runPaths(options.runDir).checkpoints);
    return await metaTrainLocked(options);
  } finally {
    for (const lock of locks.reverse()) await lock.release();
  }
}

async function metaTrainLocked(options: MetaTrainOptions): Promise<MetaTrainResult> {
  const { recipe, runDir } = options;
  const emit: MetaTrainListener = options.onEvent ?? (() => undefined);
  const now = options.now ?? (() => Date.now());
  const lo = createLearnedOptimizer(recipe.learnedOptimizer.arch, recipe.learnedOptimizer.config);
  const n = thetaSize(lo);
  const hash = recipeHash(recipe);
  const estimators = buildEstimators(recipe, lo);
  const { opt, schedule } = outerOptimizer(recipe);
  const paths = runPaths(runDir);

  let state: RunState;
  let resumedFrom: string | null = null;
  let segments: Segment[] = [];
  const history: History = { metaLoss: [], metaGradNorm: [], seconds: [] };
  if (options.resume && options.continuation !== undefined) {
    throw new Error('meta-train: --resume continues a run folder exactly, --continuation continues from a continuation file; give one');
  }
  const continued = options.continuation !== undefined ? await readContinuation(options.continuation, lo, hash) : null;
  if (continued !== null) {
    const outer = restoreOuter(continued.checkpoint, options.continuation!, lo, opt);
    // As after a resample: every particle starts a new episode, desynchronized again.
    state = { ...outer, estimators: estimators.map((e) => e.restart(e.init(), outer.step)) };
    segments = continued.segments;
    for (const key of ['metaLoss', 'metaGradNorm', 'seconds'] as const) history[key].push(...continued.history[key]);
    resumedFrom = options.continuation!;
    await trimMetrics(runDir, state.step);
  } else if (options.resume) {
    const found = await newestCheckpoint(
      runDir,
      (message) => emit({ type: 'warning', message }),
      (ckpt, entry) => restore(ckpt, entry, recipe.outerSteps, lo, opt, estimators, hash),
    );
    state = found.used;
    resumedFrom = found.path;
    await trimMetrics(runDir, state.step);
  } else {
    const theta0 = lo.initTheta(recipe.learnedOptimizer.initSeed ?? recipe.seed);
    if (recipe.learnedOptimizer.zeroOutput) zeroOutputLayer(lo, theta0);
    state = { step: 0, theta: flattenTheta(lo, theta0), opt: opt.init(theta0), estimators: estimators.map((e) => e.init()) };
    tf.dispose(Object.values(theta0));
    await trimMetrics(runDir, -1);
  }
  await writeFile(paths.recipe, `${JSON.stringify(recipe, null, 2)}\n`);

  emit({
    type: 'run-start',
    runDir,
    recipeName: recipe.name ?? 'recipe',
    arch: lo.arch,
    thetaSize: n,
    totalSteps: recipe.outerSteps,
    startStep: state.step,
    resumedFrom,
    backend: options.backend,
    workers: options.workers,
    ...(options.queue !== undefined ? { queue: options.queue } : {}),
    estimators: estimators.map((e) => e.label),
  });

  let lastCheckpoint: string | null = options.resume ? resumedFrom : null;
  let lastCheckpointTime = now();
  const stepSeconds: number[] = [];
  const segmentStart = state.step;
  const checkpoint = async (reason: 'steps' | 'minutes' | 'stop' | 'final') => {
    const path = `${paths.checkpoints}/${checkpointName(state.step)}`;
    await saveCheckpoint(path, await toCheckpoint(state, lo, estimators, hash, recipe, options.backend, true));
    await pruneCheckpoints(runDir, recipe.checkpoint.keep);
    if (options.continuation !== undefined) {
      const segment: Segment = {
        commit: (await gitCommit()) ?? 'unknown',
        fromStep: segmentStart,
        toStep: state.step,
        seconds: stepSeconds.reduce((a, b) => a + b, 0),
        backend: options.backend,
      };
      const outer = await toCheckpoint({ ...state, estimators: [] }, lo, [], hash, recipe, options.backend, true);
      await writeContinuation(options.continuation, outer, [...segments, segment], history);
    }
    lastCheckpoint = path;
    lastCheckpointTime = now();
    emit({ type: 'checkpoint', step: state.step, path, reason });
  };

  let status: MetaTrainResult['status'] = 'done';
  let error: Error | undefined;
  try {
    while (state.step < recipe.outerSteps) {
      if (options.signal?.aborted || (options.stopAfter !== undefined && state.step >= options.stopAfter)) {
        status = 'stopped';
        break;
      }
      const t0 = now();
      // Estimators take the state and return the next one: if any fails, nothing is committed
      // (allSettled: one still running when another fails finishes before the run stops).
      const settled = await Promise.allSettled(
        estimators.map((e, i) => e.estimate(state.theta, state.step, state.estimators[i]!, (input, tag) => options.run(input, { ...tag, estimator: i }))),
      );
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const estimates = settled.map((r) => (r as PromiseFulfilledResult<{ result: EstimateResult; state: EstimatorState }>).value);
      const results = estimates.map((e) => e.result);
      const grad = averageGradient(results, n);
      const metaLossRaw = results.reduce((s, r) => s + r.metaLoss, 0) / results.length;
      const metaLoss = Number.isFinite(metaLossRaw) ? metaLossRaw : NAN_META_LOSS;
      const outerLr = schedule(state.step);
      state = { ...outerUpdate(state, grad, lo, opt), estimators: estimates.map((e) => e.state) };
      const seconds = Math.max((now() - t0) / 1000, 1e-9);
      stepSeconds.push(seconds);
      history.metaLoss.push(metaLoss);
      history.metaGradNorm.push(norm(grad));
      history.seconds.push(seconds);
      const innerSteps = results.reduce((s, r) => s + r.innerSteps, 0);
      const meanStep = stepSeconds.reduce((a, b) => a + b, 0) / stepSeconds.length;
      const rate = innerSteps / seconds;
      const event = {
        type: 'outer-step' as const,
        step: state.step,
        totalSteps: recipe.outerSteps,
        metaLoss,
        innerLoss: results.map((r) => r.innerLoss),
        metaGradNorm: norm(grad),
        sigma: recipe.estimators[0]!.sigma,
        outerLr,
        innerSteps,
        seconds,
        innerStepsPerSecond: rate,
        innerStepsPerSecondPerWorker: new Array<number>(Math.max(1, options.workers)).fill(rate / Math.max(1, options.workers)),
        etaSeconds: meanStep * (recipe.outerSteps - state.step),
      };
      emit(event);
      const { type: _t, ...record } = event;
      await appendMetrics(runDir, { ...record, innerLoss: record.innerLoss.map((x) => (Number.isFinite(x) ? x : null)) });
      if (options.continuation !== undefined && state.step % (options.snapshotEvery ?? SNAPSHOT_EVERY) === 0) {
        const path = join(snapshotDir(options.continuation), checkpointName(state.step));
        await makeDirs(dirname(path));
        await saveCheckpoint(path, await toCheckpoint(state, lo, estimators, hash, recipe, options.backend, false));
      }
      if (state.step === recipe.outerSteps) break;
      if (state.step % recipe.checkpoint.everySteps === 0) await checkpoint('steps');
      else if (now() - lastCheckpointTime >= recipe.checkpoint.everyMinutes * 60_000) await checkpoint('minutes');
    }
    if (status === 'done') {
      await checkpoint('final');
      await saveCheckpoint(paths.theta, await toCheckpoint(state, lo, estimators, hash, recipe, options.backend, false));
    } else if (lastCheckpoint === null || !lastCheckpoint.endsWith(checkpointName(state.step))) {
      await checkpoint('stop');
    }
  } catch (e) {
    status = 'failed';
    error = e instanceof Error ? e : new Error(String(e));
    // The state is that of the last completed outer step (a failed step commits nothing): save it.
    try {
      if (lastCheckpoint === null || !lastCheckpoint.endsWith(checkpointName(state.step))) await checkpoint('stop');
    } catch (writeError) {
      emit({ type: 'warning', message: `could not write a checkpoint after the failure: ${(writeError as Error).message}` });
    }
  }
  disposeState(state.opt.inner);
  emit({ type: 'run-end', step: state.step, status, checkpoint: lastCheckpoint, ...(error ? { error: error.message } : {}) });
  return { status, step: state.step, theta: state.theta, lastCheckpoint, ...(error ? { error } : {}) };
}

/** The learned optimizer's output layer → 0 (recipe learnedOptimizer.zeroOutput). */
function zeroOutputLayer(lo: LearnedOptimizer, theta: Record<string, tf.Tensor>): void {
  if (lo.outputLayer.length === 0) throw new Error(`recipe: learnedOptimizer.zeroOutput needs an MLP output layer; ${lo.arch} has none`);
  for (const name of lo.outputLayer) {
    const t = theta[name];
    if (t === undefined) throw new Error(`recipe: learnedOptimizer.zeroOutput: ${lo.arch} has no '${name}'`);
    theta[name] = tf.zerosLike(t);
    t.dispose();
  }
}

function outerUpdate(state: OuterState, grad: Float32Array, lo: LearnedOptimizer, opt: Optimizer): OuterState {
  const params = unflattenTheta(lo, state.theta);
  const grads = unflattenTheta(lo, grad);
  const next = opt.step(params, grads, state.opt);
  const theta = flattenTheta(lo, next.params);
  tf.dispose([...Object.values(next.params), ...Object.values(grads)]);
  return { step: state.step + 1, theta, opt: next.state };
}

async function toCheckpoint(
  state: RunState,
  lo: LearnedOptimizer,
  estimators: GradientEstimator[],
  hash: string,
  recipe: Recipe,
  backend: string,
  withTraining: boolean,
): Promise<Checkpoint> {
  const theta = unflattenTheta(lo, state.theta);
  const ckpt = await learnedOptimizerCheckpoint(lo, theta, { provenance: { recipe: recipe.name ?? 'recipe', outerStep: state.step, backend } });
  tf.dispose(Object.values(theta));
  if (!withTraining) return ckpt;
  const arrays: Record<string, Float32Array> = {};
  const numbers: number[] = [];
  // Tensor leaves under their position among all leaves, number leaves in order (the file layout since v1).
  encodeState(state.opt.inner).forEach((leaf, i) => {
    if (typeof leaf === 'number') numbers.push(leaf);
    else arrays[`outer/${i}`] = leaf;
  });
  const estimatorJson: JsonValue[] = [];
  state.estimators.forEach((e, i) => {
    for (const [name, a] of Object.entries(e.arrays)) arrays[`estimator-${i}/${name}`] = a;
    estimatorJson.push(e.json);
  });
  ckpt.training = {
    arrays: flatTable(arrays),
    state: { recipeHash: hash, step: state.step, outerNumbers: numbers, estimators: estimatorJson, estimatorLabels: estimators.map((e) => e.label) },
  };
  return ckpt;
}

/**
 * The run state a training checkpoint holds, validated before anything is used: the recipe hash
 * (another recipe's folder is refused outright), the step against the file's name, its
 * provenance and the recipe's length, then every estimator's and the outer optimizer's state.
 * Any other problem throws, and the caller falls back to the previous checkpoint.
 */
function restore(
  ckpt: Checkpoint,
  entry: { step: number; path: string },
  outerSteps: number,
  lo: LearnedOptimizer,
  opt: Optimizer,
  estimators: GradientEstimator[],
  hash: string,
): RunState {
  const { path } = entry;
  const t = ckpt.training!;
  const s = t.state as { recipeHash?: unknown; estimators?: unknown; step?: unknown };
  if (s.recipeHash !== hash) {
    throw new ResumeRefusedError(
      `meta-train --resume: ${path} was written by another recipe (recipe hash ${printable(String(s.recipeHash), 80)}, this recipe ${hash}); ` +
        'resume with the recipe the run started with (its copy is recipe.json in the run folder)',
    );
  }
  if (s.step !== entry.step) throw new Error(`training.state.step is ${printable(String(s.step), 40)}, but the file is named for step ${entry.step}`);
  if (ckpt.provenance.outerStep !== undefined && ckpt.provenance.outerStep !== entry.step) {
    throw new Error(`provenance.outerStep is ${ckpt.provenance.outerStep}, but the file is named for step ${entry.step}`);
  }
  if (entry.step > outerSteps) throw new Error(`step ${entry.step} is past the recipe's ${outerSteps} outer steps`);
  const arrays: Record<string, Float32Array> = {};
  t.arrays.names.forEach((name, i) => (arrays[name] = t.arrays.data[i]!));
  const est = Array.isArray(s.estimators) ? s.estimators : [];
  if (est.length !== estimators.length) throw new Error(`it holds ${est.length} estimator states, the recipe has ${estimators.length}`);
  // The estimators' states are checked first; the outer state last, as it allocates tensors.
  const states = estimators.map((e, i): EstimatorState => {
    const prefix = `estimator-${i}/`;
    const own: Record<string, Float32Array> = {};
    for (const [name, a] of Object.entries(arrays)) if (name.startsWith(prefix)) own[name.slice(prefix.length)] = a;
    const json = est[i];
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`estimator ${i}: expected a state object`);
    const state = { json, arrays: own };
    e.check(state);
    return state;
  });
  return { ...restoreOuter(ckpt, path, lo, opt), estimators: states };
}

/** Theta, the outer optimizer's state and the step, from a checkpoint or a continuation file. */
function restoreOuter(ckpt: Checkpoint, path: string, lo: LearnedOptimizer, opt: Optimizer): OuterState {
  if (ckpt.arch !== lo.arch) throw new Error(`meta-train: ${path} holds a ${ckpt.arch}, the recipe trains a ${lo.arch}`);
  const t = ckpt.training!;
  const s = t.state as { step?: unknown; outerNumbers?: unknown };
  const step = s.step;
  if (!Number.isSafeInteger(step) || (step as number) < 0) throw new Error(`meta-train: ${path} has no valid step`);
  const arrays: Record<string, Float32Array> = {};
  t.arrays.names.forEach((name, i) => (arrays[name] = t.arrays.data[i]!));
  const thetaFlat = new Float32Array(thetaSize(lo));
  let off = 0;
  ckpt.theta.data.forEach((d) => {
    thetaFlat.set(d, off);
    off += d.length;
  });
  if (off !== thetaFlat.length) throw new Error(`meta-train: ${path} theta has ${off} values, ${lo.arch} needs ${thetaFlat.length}`);

  const thetaParams = unflattenTheta(lo, thetaFlat);
  const template = opt.init(thetaParams);
  tf.dispose(Object.values(thetaParams));
  const numbers = Array.isArray(s.outerNumbers) ? (s.outerNumbers as unknown[]) : [];
  let ni = 0;
  const leaves = stateLeaves(template.inner).map((leaf, i) => (typeof leaf === 'number' ? numbers[ni++] : arrays[`outer/${i}`]));
  let inner: StateTree;
  try {
    if (leaves.some((l) => typeof l !== 'number' && !(l instanceof Float32Array)) || ni !== numbers.length) {
      throw new Error(`meta-train: ${path} outer-optimizer state does not match`);
    }
    inner = decodeState(template.inner, leaves as PlainLeaf[], `meta-train: ${path} outer-optimizer`);
  } finally {
    disposeState(template.inner);
  }
  return { step: step as number, theta: thetaFlat, opt: { spec: template.spec, inner } };
}
