// One unit of `lopt bench`: one optimizer on one task, every grid point × seed as one population,
// trained for T steps; then each member's inner-valid loss (selection) and test loss/accuracy.
// Plain input and output, so it runs the same in this thread or in a worker.
import * as tf from '@tensorflow/tfjs-core';
import { loadLearnedOptimizer } from '../lopt/io.js';
import type { Optimizer } from '../optim/optimizer.js';
import { isOptimizerName } from '../optim/registry.js';
import type { Params } from '../tree/params.js';
import { disposeState } from '../tree/stateTree.js';
import { lossAndGrads } from '../../tasks/lossAndGrads.js';
import { taskFromName } from '../../tasks/registry.js';
import type { Batch, Split, Task } from '../../tasks/types.js';
import { baselineForGrid, type BenchScheduleSpec } from './baselines.js';

export type BenchOptimizerSpec =
  /** `name` is what reports show ('adam', or 'sgd@0.01' for one untuned learning rate); `optimizer` the registry name. */
  { kind: 'baseline'; name: string; optimizer: string; lrs: number[] } | { kind: 'learned'; name: string; checkpoint: string };

export interface BenchRunInput {
  task: string;
  steps: number;
  optimizer: BenchOptimizerSpec;
  /** Seeds of the initialization and the data; every grid point runs each. */
  seeds: number[];
  /** Batches the inner-valid and test losses are averaged over. */
  evalBatches: number;
  /** The baselines' schedule when the suite entry names one (absent: warmup + cosine). */
  schedule?: BenchScheduleSpec;
}

export interface BenchRunOutput {
  /** Training loss before each update [T, P], member m = gridIndex·S + seedIndex (NaN kept). */
  losses: Float32Array;
  /** Final parameters' loss on inner-valid [P] (NaN when diverged). */
  innerValid: Float32Array;
  testLoss: Float32Array;
  /** [P], or null when the task is not a classification task. */
  testAccuracy: Float32Array | null;
  /** The task's own held-out metrics (Task.metrics), each [P]; absent when it has none. */
  testMetrics?: Record<string, Float32Array>;
  seconds: number;
}

async function optimizerFor(
  spec: BenchOptimizerSpec,
  task: Task,
  steps: number,
  S: number,
  schedule: BenchScheduleSpec | undefined,
): Promise<{ opt: Optimizer; dispose: () => void }> {
  if (spec.kind === 'baseline') {
    if (!isOptimizerName(spec.optimizer)) throw new Error(`bench: unknown optimizer '${spec.optimizer}'`);
    return { opt: baselineForGrid(spec.optimizer, steps, spec.lrs, S, task.mupScale, schedule, task.layers), dispose: () => undefined };
  }
  const loaded = await loadLearnedOptimizer(spec.checkpoint);
  const lo = loaded.learnedOptimizer;
  // One trial: theta stacked once per seed.
  const theta: Params = {};
  for (const [name, t] of Object.entries(loaded.theta)) theta[name] = tf.stack(new Array<tf.Tensor>(S).fill(t));
  const opt = lo.optimizer(theta, { population: S, mupScale: { ...task.mupScale }, totalSteps: steps });
  return {
    opt,
    dispose: () => {
      tf.dispose(Object.values(theta));
      loaded.dispose();
    },
  };
}

/** Means over `n` batches of `split` of per-member metrics, all from the same batches. */
function evaluate(task: Task, params: Params, split: Split, seeds: number[], n: number, metrics: ((p: Params, b: Batch) => tf.Tensor1D)[]): Float32Array[] {
  const stream = task.batches(split, seeds);
  let sums = metrics.map(() => tf.zeros([seeds.length]));
  for (let i = 0; i < n; i++) {
    const batch = stream.next();
    const next = metrics.map((metric, k) => tf.tidy(() => tf.add(sums[k]!, metric(params, batch))));
    tf.dispose([...sums, ...Object.values(batch)]);
    sums = next;
  }
  return sums.map((sum) => {
    const mean = tf.div(sum, n);
    const out = Float32Array.from(mean.dataSync() as Float32Array);
    tf.dispose([sum, mean]);
    return out;
  });
}

/** Task.metrics on the test split: per metric, the mean over `n` batches (the test loss's batches). */
function metricsOn(task: Task, params: Params, seeds: number[], n: number): Record<string, Float32Array> {
  const stream = task.batches('test', seeds);
  let sums: Record<string, tf.Tensor> = {};
  for (let i = 0; i < n; i++) {
    const batch = stream.next();
    const next = tf.tidy(() => {
      const values = task.metrics!(params, batch);
      return Object.fromEntries(Object.entries(values).map(([name, v]) => [name, sums[name] ? tf.add(sums[name], v) : tf.clone(v)]));
    });
    tf.dispose([...Object.values(sums), ...Object.values(batch)]);
    sums = next;
  }
  const out: Record<string, Float32Array> = {};
  for (const [name, sum] of Object.entries(sums)) {
    out[name] = Float32Array.from(sum.dataSync() as Float32Array, (x) => x / n);
    sum.dispose();
  }
  return out;
}

export async function runBenchUnit(input: BenchRunInput): Promise<BenchRunOutput> {
  const t0 = performance.now();
  const task = taskFromName(input.task);
  const S = input.seeds.length;
  const G = input.optimizer.kind === 'baseline' ? input.optimizer.lrs.length : 1;
  const P = G * S;
  const memberSeeds = Array.from({ length: P }, (_, m) => input.seeds[m % S]!);
  const { opt, dispose } = await optimizerFor(input.optimizer, task, input.steps, S, input.schedule);
  let params = task.init(memberSeeds);
  let state = opt.init(params);
  const stream = task.batches('train', memberSeeds);
  const rows: tf.Tensor[] = [];
  try {
    for (let t = 0; t < input.steps; t++) {
      const batch = stream.next();
      // Layer statistics (MKOR) only on the steps the optimizer reads them: the others keep the fast path.
      const withStatistics = opt.wantsLayerStatistics(state);
      if (withStatistics && task.lossGradsAndStatistics === undefined)
        throw new Error(`bench: ${input.task} does not report layer statistics, which ${opt.name} needs`);
      const {
        losses: value,
        grads,
        statistics,
      } = withStatistics ? task.lossGradsAndStatistics!(params, batch) : { ...lossAndGrads(task, params, batch), statistics: undefined };
      tf.dispose(Object.values(batch));
      rows.push(value);
      ({ params, state } = opt.step(params, grads, state, { loss: value, ...(statistics ? { layerStatistics: statistics } : {}) }));
      tf.dispose(Object.values(grads));
      if (statistics) for (const s of Object.values(statistics)) tf.dispose([s.inputs, s.outputGrads]);
    }
    const stacked = tf.stack(rows);
    const losses = Float32Array.from(stacked.dataSync() as Float32Array);
    stacked.dispose();
    const lossOf = (p: Params, b: Batch) => task.loss(p, b);
    const [innerValid] = evaluate(task, params, 'inner-valid', memberSeeds, input.evalBatches, [lossOf]);
    const accuracy = task.accuracy?.bind(task);
    const [testLoss, testAccuracy = null] = evaluate(task, params, 'test', memberSeeds, input.evalBatches, accuracy ? [lossOf, accuracy] : [lossOf]);
    const testMetrics = task.metrics ? metricsOn(task, params, memberSeeds, input.evalBatches) : undefined;
    const seconds = (performance.now() - t0) / 1000;
    return { losses, innerValid: innerValid!, testLoss: testLoss!, testAccuracy, ...(testMetrics ? { testMetrics } : {}), seconds };
  } finally {
    tf.dispose([...rows, ...Object.values(params)]);
    disposeState(state.inner);
    dispose();
  }
}
