// One unit of meta-training work: a few particles (antithetic pairs of population members) of one
// task advanced T inner steps in one op stream, with the learned optimizer applied to all of them
// at once. Input and output are plain objects with typed arrays, so a unit runs the same in this
// thread or in a worker; its result depends on its input and the backend only.
import * as tf from '@tensorflow/tfjs-core';
import type { LearnedOptimizer } from '../lopt/types.js';
import { withHorizons } from '../lopt/learnedTransform.js';
import { createLearnedOptimizer } from '../lopt/registry.js';
import type { Optimizer, OptimizerState } from '../optim/optimizer.js';
import { selectMembers } from '../tree/memberSelect.js';
import type { Params } from '../tree/params.js';
import { disposeState, replaceLeaves, stateLeaves, type StateTree } from '../tree/stateTree.js';
import { lossAndGrads } from '../../tasks/lossAndGrads.js';
import { taskFromName } from '../../tasks/registry.js';
import type { Batch, BatchStream, Split, Task } from '../../tasks/types.js';
import { episodeLength, episodeSeeds, truncationDataSeed, type EpisodeLength, type ParticleState } from './particles.js';
import { thetaSize, unflattenThetas } from './thetaVector.js';
import { tidyTree } from '../tree/tidy.js';
import { decodeState, encodeState, type PlainLeaf } from '../tree/stateCodec.js';

/** The inner runs' parameters and optimizer state, as arrays (every tensor [P, ...]). */
export interface UnitState {
  /** Parameters in task.shapes order. */
  params: Float32Array[];
  /** Tensor leaves of the optimizer state, in stateLeaves order. */
  optTensors: Float32Array[];
  /** Number leaves of the optimizer state (step counts), in stateLeaves order. */
  optNumbers: number[];
}

/** How a full-episode unit turns its run into one meta-loss per member (ES). */
export interface FinalLossSpec {
  /** Batches of `split` the final parameters' loss is averaged over. */
  batches: number;
  split: Split;
}

export interface TruncationUnitInput {
  /** Canonical task name (tasks/registry). */
  task: string;
  lopt: { arch: string; config: Record<string, number | string | boolean> };
  /** The estimator's stream root: particle draws (episode lengths, init and data seeds) come from it. */
  root: string;
  /** The estimator-wide indices of this unit's particles. */
  particles: number[];
  particleStates: ParticleState[];
  /** Lengths of the episodes a particle starts when its current one ends. */
  lengths: EpisodeLength;
  /** Perturbed thetas [2k, n]: particle j's positive member 2j, its negative member 2j+1. */
  thetas: Float32Array;
  steps: number;
  /** 'shared': each negative member starts from its positive member's state (truncated ES). */
  start: 'persistent' | 'shared';
  /** null: every particle (re)starts its current episode from its initialization. */
  state: UnitState | null;
  finalLoss?: FinalLossSpec;
  /** 'linear': step t of an episode of length L weighs 2(t+1)/L in `losses` (rawLosses stay unweighted). */
  lossWeighting?: 'linear';
}

export interface TruncationUnitOutput {
  /** Normalized pre-update training loss [T, 2k] (NaN/Inf already mapped by the task's normalizer). */
  losses: Float32Array;
  /** The same, unnormalized [T, 2k] (may hold NaN). */
  rawLosses: Float32Array;
  /** Per particle, the first step of this truncation that began a new episode (0 when the unit started from initialization), or −1. */
  resetStep: Int32Array;
  particleStates: ParticleState[];
  state: UnitState;
  /** Normalized loss of the final parameters [2k], when finalLoss was asked for. */
  finalLosses?: Float32Array;
}

const tasks = new Map<string, Task>();
const lopts = new Map<string, LearnedOptimizer>();

function cachedTask(name: string): Task {
  let t = tasks.get(name);
  if (t === undefined) {
    t = taskFromName(name);
    tasks.set(name, t);
  }
  return t;
}

export function cachedLearnedOptimizer(arch: string, config: Record<string, number | string | boolean>): LearnedOptimizer {
  const key = `${arch} ${JSON.stringify(config)}`;
  let lo = lopts.get(key);
  if (lo === undefined) {
    lo = createLearnedOptimizer(arch, config);
    lopts.set(key, lo);
  }
  return lo;
}

export function runTruncationUnit(input: TruncationUnitInput): TruncationUnitOutput {
  const task = cachedTask(input.task);
  const lo = cachedLearnedOptimizer(input.lopt.arch, input.lopt.config);
  const k = input.particles.length;
  const P = 2 * k;
  const T = input.steps;
  if (input.particleStates.length !== k) throw new Error(`truncation unit: ${k} particles but ${input.particleStates.length} particle states`);
  if (input.thetas.length !== P * thetaSize(lo)) {
    throw new Error(`truncation unit: thetas hold ${input.thetas.length} values, ${P} members of ${lo.arch} need ${P * thetaSize(lo)}`);
  }
  const names = Object.keys(task.shapes);
  const states = input.particleStates.map((s) => ({ ...s }));
  const memberSeeds = (seedOf: (j: number) => number) => input.particles.flatMap((_, j) => [seedOf(j), seedOf(j)]);
  const initSeedOf = (j: number) => episodeSeeds(input.root, input.particles[j]!, states[j]!.episode).initSeed;

  const theta = unflattenThetas(lo, input.thetas, P);
  // totalSteps: a placeholder the episodes replace (planEpisodes) for architectures that read it.
  const opt = lo.optimizer(theta, { population: P, memberSteps: true, mupScale: { ...task.mupScale }, totalSteps: 1 });
  let params: Params;
  let state: OptimizerState;
  if (input.state === null) {
    params = task.init(memberSeeds(initSeedOf));
    state = opt.init(params);
  } else {
    ({ params, state } = restoreState(task, opt, input.state, P, names));
    if (input.start === 'shared') {
      const take = Array.from({ length: P }, (_, m) => m % 2 === 1);
      const positive = Array.from({ length: P }, (_, m) => m - (m % 2));
      const next = tidyTree(() => {
        const copy = (t: tf.Tensor) => tf.gather(t, positive);
        const p: Params = {};
        for (const n of names) p[n] = copy(params[n]!);
        const inner = mapTensors(state.inner, copy);
        return { p, inner: selectMembers(state.inner, inner, take) };
      });
      tf.dispose(Object.values(params));
      disposeState(state.inner);
      params = next.p;
      state = { spec: state.spec, inner: next.inner };
    }
  }

  // Architectures that read the fraction of training done plan each member's run as its particle's episode.
  const planEpisodes = (s: OptimizerState): OptimizerState => ({
    ...s,
    inner: withHorizons(
      s.inner,
      states.flatMap((p) => [p.length, p.length]),
    ),
  });
  state = planEpisodes(state);
  const streams: BatchStream[] = input.particles.map((p, j) =>
    task.batches('train', [truncationDataSeed(input.root, p, states[j]!), truncationDataSeed(input.root, p, states[j]!)]),
  );
  // Starting from initialization is the start of an episode: PES's accumulator restarts too.
  const resetStep = new Int32Array(k).fill(input.state === null ? 0 : -1);
  const lossRows: tf.Tensor[] = [];
  const rawRows: tf.Tensor[] = [];
  try {
    for (let t = 0; t < T; t++) {
      const take = new Array<boolean>(P).fill(false);
      states.forEach((s, j) => {
        if (s.step < s.length) return;
        s.episode += 1;
        s.step = 0;
        s.length = episodeLength(input.root, input.particles[j]!, s.episode, input.lengths);
        take[2 * j] = take[2 * j + 1] = true;
        if (resetStep[j] === -1) resetStep[j] = t;
        const seed = truncationDataSeed(input.root, input.particles[j]!, s);
        streams[j] = task.batches('train', [seed, seed]);
      });
      if (take.some((b) => b)) {
        ({ params, state } = restartMembers(task, opt, params, state, take, memberSeeds(initSeedOf)));
        state = planEpisodes(state);
      }

      const batch = nextBatch(streams);
      const { losses: value, grads } = lossAndGrads(task, params, batch);
      tf.dispose(Object.values(batch));
      rawRows.push(value);
      if (input.lossWeighting === 'linear') {
        const weights = tf.tensor1d(states.flatMap((s) => [(2 * (s.step + 1)) / s.length, (2 * (s.step + 1)) / s.length]));
        lossRows.push(tf.tidy(() => tf.mul(task.normalizeLoss(value), weights)));
        weights.dispose();
      } else {
        lossRows.push(tf.tidy(() => task.normalizeLoss(value)));
      }
      const next = opt.step(params, grads, state, { loss: value });
      tf.dispose(Object.values(grads));
      params = next.params;
      state = next.state;
      for (const s of states) s.step += 1;
    }

    let finalLosses: Float32Array | undefined;
    if (input.finalLoss !== undefined) finalLosses = finalLoss(task, params, input, states);
    const losses = stackRows(lossRows, T, P);
    const rawLosses = stackRows(rawRows, T, P);
    const out: TruncationUnitOutput = {
      losses,
      rawLosses,
      resetStep,
      particleStates: states,
      state: saveState(params, state, names),
      ...(finalLosses ? { finalLosses } : {}),
    };
    return out;
  } finally {
    tf.dispose([...lossRows, ...rawRows]);
    tf.dispose(Object.values(params));
    disposeState(state.inner);
    tf.dispose(Object.values(theta));
  }
}

/** Every tensor leaf of a state tree through `fn` (numbers kept). */
function mapTensors(tree: StateTree, fn: (t: tf.Tensor) => tf.Tensor): StateTree {
  return replaceLeaves(
    tree,
    stateLeaves(tree).map((l) => (l instanceof tf.Tensor ? fn(l) : l)),
  );
}

/** Members with take[m] start over: fresh parameters from `seeds` and a fresh optimizer state. */
function restartMembers(
  task: Task,
  opt: Optimizer,
  params: Params,
  state: OptimizerState,
  take: boolean[],
  seeds: number[],
): { params: Params; state: OptimizerState } {
  const fresh = task.init(seeds);
  const freshState = opt.init(fresh);
  const next = tidyTree(() => ({
    p: selectMembers(params, fresh, take),
    inner: selectMembers(state.inner, freshState.inner, take),
  }));
  tf.dispose([...Object.values(fresh), ...Object.values(params)]);
  disposeState(freshState.inner);
  disposeState(state.inner);
  return { params: next.p, state: { spec: state.spec, inner: next.inner } };
}

/** One batch for all members: each particle's stream gives its pair's rows. */
function nextBatch(streams: BatchStream[]): Batch {
  const parts = streams.map((s) => s.next());
  if (parts.length === 1) return parts[0]!;
  const out: Batch = {};
  for (const key of Object.keys(parts[0]!))
    out[key] = tf.concat(
      parts.map((b) => b[key]!),
      0,
    );
  for (const b of parts) tf.dispose(Object.values(b));
  return out;
}

function stackRows(rows: tf.Tensor[], T: number, P: number): Float32Array {
  if (rows.length === 0) return new Float32Array(0);
  const stacked = tf.stack(rows);
  const data = stacked.dataSync() as Float32Array;
  stacked.dispose();
  if (data.length !== T * P) throw new Error(`truncation unit: ${data.length} losses, expected ${T * P}`);
  return Float32Array.from(data);
}

/** Normalized loss of the final parameters averaged over fresh batches (full-episode ES 'last-fresh'). */
function finalLoss(task: Task, params: Params, input: TruncationUnitInput, states: ParticleState[]): Float32Array {
  const spec = input.finalLoss!;
  const seeds = input.particles.flatMap((p, j) => {
    const s = truncationDataSeed(input.root, p, { ...states[j]!, step: -1 });
    return [s, s];
  });
  const stream = task.batches(spec.split, seeds);
  const P = seeds.length;
  let sum = tf.zeros([P]);
  for (let b = 0; b < spec.batches; b++) {
    const batch = stream.next();
    const next = tf.tidy(() => tf.add(sum, task.normalizeLoss(task.loss(params, batch))));
    tf.dispose([...Object.values(batch), sum]);
    sum = next;
  }
  const mean = tf.div(sum, spec.batches);
  const out = Float32Array.from(mean.dataSync() as Float32Array);
  tf.dispose([sum, mean]);
  return out;
}

function saveState(params: Params, state: OptimizerState, names: string[]): UnitState {
  const leaves = encodeState(state.inner);
  return {
    params: names.map((n) => Float32Array.from(params[n]!.dataSync() as Float32Array)),
    optTensors: leaves.filter((l): l is Float32Array => typeof l !== 'number'),
    optNumbers: leaves.filter((l): l is number => typeof l === 'number'),
  };
}

function restoreState(task: Task, opt: Optimizer, saved: UnitState, P: number, names: string[]): { params: Params; state: OptimizerState } {
  if (saved.params.length !== names.length)
    throw new Error(`truncation unit: saved state holds ${saved.params.length} parameters, ${task.meta.name} has ${names.length}`);
  const params: Params = {};
  names.forEach((n, i) => {
    const shape = [P, ...task.shapes[n]!];
    const size = shape.reduce((a, b) => a * b, 1);
    if (saved.params[i]!.length !== size)
      throw new Error(`truncation unit: saved '${n}' holds ${saved.params[i]!.length} values, [${shape.join(',')}] needs ${size}`);
    params[n] = tf.tensor(saved.params[i]!, shape, 'float32');
  });
  // The unit's state keeps tensor and number leaves apart; interleave them in the layout's order.
  const template = opt.init(params);
  let ti = 0;
  let ni = 0;
  const leaves = stateLeaves(template.inner).map((l) => (typeof l === 'number' ? saved.optNumbers[ni++] : saved.optTensors[ti++]));
  let inner: StateTree;
  try {
    if (leaves.some((l) => l === undefined) || ti !== saved.optTensors.length || ni !== saved.optNumbers.length) {
      throw new Error(`truncation unit: saved optimizer state does not match ${opt.name}'s layout`);
    }
    inner = decodeState(template.inner, leaves as PlainLeaf[], `truncation unit (${opt.name})`);
  } catch (e) {
    tf.dispose(Object.values(params));
    throw e;
  } finally {
    disposeState(template.inner);
  }
  return { params, state: { spec: template.spec, inner } };
}
