// Meta-training throughput: the vectorized population against a naive loop over members, and the
// worker pool's scaling, all measured in this run.
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { perturbedThetas, sampleNoise } from '../../src/meta/estimator.js';
import { initialParticles } from '../../src/meta/particles.js';
import { parseRecipe } from '../../src/meta/recipe.js';
import { flattenTheta, thetaSize, unflattenThetas } from '../../src/meta/thetaVector.js';
import { metaTrain } from '../../src/meta/trainer.js';
import { cachedLearnedOptimizer, runTruncationUnit, type TruncationUnitInput } from '../../src/meta/truncationUnit.js';
import { UNITS_MODULE, type Units } from '../../src/units.js';
import { kernelThreads, setKernelThreads } from '../../src/kernels/native.js';
import { createUnitPool } from '../../src/parallel/unitPool.js';
import { lossAndGrads } from '../../tasks/lossAndGrads.js';
import { taskFromName } from '../../tasks/registry.js';
import type { BenchRow } from './row.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TASK = 'mlp-mnist8-w32-d1-relu-b128-mup';
const ARCH = 'small_fc_lopt';
const PARTICLES = 8;
/** Inner steps per truncation: μLO's truncation length. */
const STEPS = 50;

/** One truncation of all particles in one op stream (P = 2·PARTICLES). */
function vectorized(theta: Float32Array): () => void {
  const lengths = { kind: 'fixed' as const, steps: 10_000 };
  const noise = sampleNoise('bench', 0, PARTICLES, theta.length);
  let input: TruncationUnitInput = {
    task: TASK,
    lopt: { arch: ARCH, config: {} },
    root: 'bench',
    particles: Array.from({ length: PARTICLES }, (_, i) => i),
    particleStates: initialParticles('bench', PARTICLES, lengths, 0),
    lengths,
    thetas: perturbedThetas(theta, noise, 0.01, 0, PARTICLES),
    steps: STEPS,
    start: 'persistent',
    state: null,
  };
  return () => {
    const out = runTruncationUnit(input);
    input = { ...input, state: out.state, particleStates: out.particleStates };
  };
}

/** The same inner steps, one member at a time (P = 1, no population axis in the optimizer). */
function naiveLoop(theta: Float32Array): () => void {
  const task = taskFromName(TASK);
  const lo = cachedLearnedOptimizer(ARCH, {});
  const noise = sampleNoise('bench', 0, PARTICLES, theta.length);
  const thetas = perturbedThetas(theta, noise, 0.01, 0, PARTICLES);
  const n = theta.length;
  const members = Array.from({ length: 2 * PARTICLES }, (_, m) => {
    const th = unflattenThetas(lo, thetas.slice(m * n, (m + 1) * n), 1);
    const opt = lo.optimizer(th, { population: 1, mupScale: { ...task.mupScale } });
    const params = task.init([Math.floor(m / 2) + 1]);
    return { th, opt, params, state: opt.init(params), stream: task.batches('train', [Math.floor(m / 2) + 1]) };
  });
  return () => {
    for (const mem of members) {
      for (let t = 0; t < STEPS; t++) {
        const batch = mem.stream.next();
        const { losses: value, grads } = lossAndGrads(task, mem.params, batch);
        value.dataSync();
        const next = mem.opt.step(mem.params, grads, mem.state);
        mem.params = next.params;
        mem.state = next.state;
        tf.dispose([value, ...Object.values(grads), ...Object.values(batch)]);
      }
    }
  };
}

function seconds(fn: () => void, reps: number): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / 1000 / reps;
}

/** Outer steps per second of a small recipe on `workers` workers (units: 4 of 2 particles). */
async function outerStepsPerSecond(task: string, workers: number, dir: string): Promise<{ rate: number; innerPerWorker: number }> {
  const recipe = parseRecipe(
    {
      name: 'bench',
      learnedOptimizer: { arch: ARCH, config: {} },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'fixed', task },
          particles: PARTICLES,
          particlesPerUnit: 2,
          truncationLength: STEPS,
          episodeLength: { min: 100, max: 400 },
          initialOffset: 100,
        },
      ],
      outerSteps: 5,
      checkpoint: { everySteps: 1000, everyMinutes: 600, keep: 1 },
    },
    'bench',
  );
  const pool = await createUnitPool<Units>({ workers, unitsModule: UNITS_MODULE, backend: 'wasm', onWarning: () => undefined });
  const times: number[] = [];
  let inner = 0;
  try {
    await metaTrain({
      recipe,
      runDir: join(dir, `${task}-w${workers}`),
      run: (input) => pool.run('truncation', input),
      workers,
      backend: 'wasm',
      onEvent: (e) => {
        if (e.type === 'outer-step' && e.step > 1) {
          times.push(e.seconds);
          inner += e.innerSteps;
        }
      },
    });
  } finally {
    await pool.close();
  }
  const total = times.reduce((a, b) => a + b, 0);
  return { rate: times.length / total, innerPerWorker: inner / total / workers };
}

function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxy = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return sxy / sxx;
}

/** 300 outer steps in this thread: tensor count and resident memory must stay flat after a warm-up of 100. */
async function memoryOverOuterSteps(dir: string): Promise<BenchRow[]> {
  const recipe = parseRecipe(
    {
      name: 'memory',
      learnedOptimizer: { arch: ARCH, config: {} },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'mlp', widths: [16], depth: { min: 1, max: 2 }, batchSize: { min: 32, max: 32 } },
          particles: 4,
          particlesPerUnit: 2,
          truncationLength: 5,
          episodeLength: { min: 10, max: 40 },
          initialOffset: 40,
          resampleEvery: 10,
        },
      ],
      outerSteps: 300,
      checkpoint: { everySteps: 50, everyMinutes: 600, keep: 2 },
    },
    'memory',
  );
  const samples = new Map<number, { tensors: number; rss: number }>();
  const rss: [number, number][] = [];
  await metaTrain({
    recipe,
    runDir: join(dir, 'memory'),
    run: async (input) => runTruncationUnit(input),
    workers: 0,
    backend: 'wasm',
    onEvent: (e) => {
      if (e.type !== 'outer-step') return;
      if (e.step >= 100) rss.push([e.step, process.memoryUsage().rss / 2 ** 20]);
      if (e.step === 100 || e.step === 300) samples.set(e.step, { tensors: tf.memory().numTensors, rss: process.memoryUsage().rss });
    },
  });
  const a = samples.get(100)!;
  const b = samples.get(300)!;
  return [
    {
      name: 'meta-train: tensors at outer step 300 − at step 100',
      value: b.tensors - a.tensors,
      goal: '0',
      ok: b.tensors === a.tensors,
      detail: `${a.tensors} → ${b.tensors}`,
    },
    {
      // Least-squares slope of RSS over steps 100…300: robust to the garbage collector's swings.
      name: 'meta-train: RSS growth over steps 100…300 (MiB per 100 outer steps)',
      value: 100 * slope(rss),
      goal: '<= 5',
      ok: 100 * slope(rss) <= 5,
      detail: `${(a.rss / 2 ** 20).toFixed(0)} → ${(b.rss / 2 ** 20).toFixed(0)} MiB`,
    },
  ];
}

export async function benchMetaTraining(): Promise<BenchRow[]> {
  const lo = cachedLearnedOptimizer(ARCH, {});
  const thetaParams = lo.initTheta(0);
  const theta = flattenTheta(lo, thetaParams);
  tf.dispose(Object.values(thetaParams));
  if (theta.length !== thetaSize(lo)) throw new Error('bench: theta size mismatch');

  const dir = await mkdtemp(join(tmpdir(), 'lopt-bench-'));
  // First, before the other groups' pools and data leave garbage behind in this process.
  const memory = await memoryOverOuterSteps(dir);
  const vec = vectorized(theta);
  const naive = naiveLoop(theta);
  // Alternate rounds so machine noise hits both alike.
  const tv: number[] = [];
  const tn: number[] = [];
  for (let round = 0; round < 3; round++) {
    tv.push(seconds(vec, 1));
    tn.push(seconds(naive, 1));
  }
  const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const memberSteps = 2 * PARTICLES * STEPS;
  const vecRate = memberSteps / median(tv);
  const naiveRate = memberSteps / median(tn);

  const scaling: BenchRow[] = [];
  try {
    // The smallest and the largest task of the mulo-mnist family.
    for (const task of [TASK, 'mlp-mnist8-w128-d2-relu-b128-mup']) {
      // Worker scaling alone: one kernel thread per worker in both runs.
      const threads = kernelThreads();
      setKernelThreads(1);
      const one = await outerStepsPerSecond(task, 1, dir);
      const two = await outerStepsPerSecond(task, 2, dir);
      setKernelThreads(threads);
      scaling.push({
        name: `meta-train: outer steps/s, 2 workers / 1 worker (${task})`,
        value: two.rate / one.rate,
        goal: '>= 1.7',
        ok: two.rate / one.rate >= 1.7,
        detail: `inner steps/s per worker: ${one.innerPerWorker.toFixed(0)} (1 worker), ${two.innerPerWorker.toFixed(0)} (2 workers)`,
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return [
    {
      name: `meta-train: vectorized / naive member loop (${ARCH}, ${TASK}, P=${2 * PARTICLES})`,
      value: vecRate / naiveRate,
      goal: '>= 8',
      ok: vecRate / naiveRate >= 8,
      detail: `${vecRate.toFixed(0)} vs ${naiveRate.toFixed(0)} inner steps/s`,
    },
    ...scaling,
    ...memory,
  ];
}
