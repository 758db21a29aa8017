// The queue's cost: the units of the shipped μLO recipe (meta-train/mulo-mnist.json) through two
// `lopt worker` processes on a throwaway Redis, against the local pool of two worker threads.
//
// The units are the recipe's real ones, captured and replayed: metaTrain runs the recipe's first
// CAPTURED_STEPS outer steps on the pool (which warms the pool up: every thread has paid its
// tfjs/wasm start-up and dataset load) and records each unit's input with its tag; the bench then
// replays those inputs outer step by outer step as the trainer sends them — all units of a step
// at once, then wait for all of them — through the pool and through the queue, in alternate
// rounds (queue, pool, pool, queue, …) so the machine's noise hits both alike. The queue gets one
// untimed replay first, its warm-up. Replayed units are the same units: same inputs, same work.
//
// The latency row comes from a last replay with one unit in flight at a time: in the timed
// rounds a step has more units than workers, and a unit's wait for a free worker (which the pool
// makes it wait as well) would count as queue latency.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createQueueHost, type QueueHost } from '../../src/distributed/queueHost.js';
import { parseQueueUrl } from '../../src/distributed/queueUrl.js';
import { ownBuild, runIdOf } from '../../src/distributed/unitJob.js';
import { kernelMode, kernelThreads } from '../../src/kernels/native.js';
import type { RunUnit } from '../../src/meta/estimator.js';
import { loadRecipe, recipeHash } from '../../src/meta/recipe.js';
import { metaTrain } from '../../src/meta/trainer.js';
import type { TruncationUnitInput } from '../../src/meta/truncationUnit.js';
import { createUnitPool, type UnitPool } from '../../src/parallel/unitPool.js';
import { UNITS_MODULE, type Units } from '../../src/units.js';
import { startRedis, type RedisServer } from '../helpers/redisServer.js';
import { cliPath, spawnWorker, type WorkerProcess } from '../helpers/queueWorkers.js';
import type { BenchRow } from './row.js';

/** Outer steps captured (mulo-mnist: 3 estimators of one unit each, so 3 units a step). */
const CAPTURED_STEPS = 4;
/** Timed replays of the captured steps per side (alternated: queue, pool, pool, queue, …). */
const ROUNDS = 4;
const WORKERS = 2;

/** This file is dist/test/speed/queue.js; the recipe is at the repository root. */
const RECIPE = fileURLToPath(new URL('../../../meta-train/mulo-mnist.json', import.meta.url));

interface CapturedUnit {
  input: TruncationUnitInput;
  estimator: number;
  unit: number;
}

/** Seconds to run every captured outer step through `run`, one step at a time. */
async function replay(steps: CapturedUnit[][], run: RunUnit, round: number): Promise<number> {
  const t0 = performance.now();
  for (let s = 0; s < steps.length; s++) {
    // A distinct outer step per round: job ids must not repeat within a queue session.
    const outerStep = round * 1000 + s + 1;
    await Promise.all(steps[s]!.map((u) => run(u.input, { outerStep, estimator: u.estimator, unit: u.unit })));
  }
  return (performance.now() - t0) / 1000;
}

/** Seconds to run every captured unit through `run` with all of them in flight at once: throughput, units/s. */
async function stream(steps: CapturedUnit[][], run: RunUnit, round: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(steps.flatMap((units, s) => units.map((u) => run(u.input, { outerStep: round * 1000 + s + 1, estimator: u.estimator, unit: u.unit }))));
  return (performance.now() - t0) / 1000;
}

function medianOf(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export async function benchQueue(): Promise<BenchRow[]> {
  if (!existsSync(cliPath())) throw new Error(`bench queue: ${cliPath()} is missing; run it from the build (npm run bench)`);
  const { recipe } = await loadRecipe(RECIPE);
  const hash = recipeHash(recipe);
  const dir = await mkdtemp(join(tmpdir(), 'lopt-bench-queue-'));
  let pool: UnitPool<Units> | undefined;
  let redis: RedisServer | undefined;
  let host: QueueHost | undefined;
  const workers: WorkerProcess[] = [];
  const warnings: string[] = [];
  try {
    pool = await createUnitPool<Units>({ workers: WORKERS, unitsModule: UNITS_MODULE, backend: 'wasm', onWarning: (m) => warnings.push(m) });
    const runOnPool = pool;

    // Capture (and the pool's warm-up).
    const byStep = new Map<number, CapturedUnit[]>();
    await metaTrain({
      recipe,
      runDir: join(dir, 'capture'),
      run: (input, tag) => {
        if (!byStep.has(tag.outerStep)) byStep.set(tag.outerStep, []);
        byStep.get(tag.outerStep)!.push({ input: structuredClone(input), estimator: tag.estimator, unit: tag.unit });
        return runOnPool.run('truncation', input);
      },
      workers: WORKERS,
      backend: 'wasm',
      stopAfter: CAPTURED_STEPS,
    });
    const steps = [...byStep.keys()].sort((a, b) => a - b).map((k) => byStep.get(k)!);
    if (steps.length !== CAPTURED_STEPS) throw new Error(`bench queue: captured ${steps.length} outer steps, not ${CAPTURED_STEPS}`);
    const unitsPerRound = steps.reduce((n, s) => n + s.length, 0);

    redis = await startRedis();
    const url = redis.url;
    const threadsEach = Math.max(1, Math.floor(kernelThreads() / WORKERS));
    // LOPT_THREADS: each process gets the kernel threads a thread of the local pool gets (its share of the cores).
    for (let i = 0; i < WORKERS; i++) workers.push(spawnWorker(url, ['--threads', '1'], { LOPT_THREADS: String(threadsEach) }));
    await Promise.all(workers.map((w) => w.waitFor(/ connected to /)));
    host = await createQueueHost({
      endpoint: parseQueueUrl(url),
      runId: runIdOf(join(dir, 'queue'), hash),
      recipeHash: hash,
      build: await ownBuild('wasm', kernelMode()),
      onEvent: (e) => {
        if (e.type === 'warning') warnings.push(e.message);
      },
    });
    const runOnQueue = host.run;
    const runPool: RunUnit = (input) => runOnPool.run('truncation', input);

    // The queue's warm-up: every worker process pays its start-up on its first units.
    await replay(steps, runOnQueue, 0);
    const warmLatencies = host.latenciesMs().length;

    // Throughput (the goal's figure): every unit of the captured steps in flight at once, so the
    // workers never wait on a step's last unit. And as the trainer runs them, one outer step at
    // a time (a step of 3 units on 2 workers has 2 in series on one worker, on both sides).
    const queueSeconds: number[] = [];
    const poolSeconds: number[] = [];
    const queueStepSeconds: number[] = [];
    const poolStepSeconds: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const sides: Array<[number[], number[], RunUnit]> = [
        [queueSeconds, queueStepSeconds, runOnQueue],
        [poolSeconds, poolStepSeconds, runPool],
      ];
      if (r % 2 === 1) sides.reverse(); // alternate, so the machine's noise hits both alike
      for (const [all, stepped, run] of sides) {
        all.push(await stream(steps, run, 2 * r + 1));
        stepped.push(await replay(steps, run, 2 * r + 2));
      }
    }
    const inRounds = host.latenciesMs().slice(warmLatencies);
    // One unit in flight at a time: round trip − compute is the queue's own latency.
    for (let s = 0; s < steps.length; s++) {
      for (const u of steps[s]!) await runOnQueue(u.input, { outerStep: (2 * ROUNDS + 1) * 1000 + s + 1, estimator: u.estimator, unit: u.unit });
    }
    const latencies = host.latenciesMs().slice(warmLatencies + inRounds.length);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const units = unitsPerRound * ROUNDS;
    const queueRate = units / sum(queueSeconds);
    const poolRate = units / sum(poolSeconds);
    const ratio = poolRate / queueRate;
    const stepRatio = sum(queueStepSeconds) / sum(poolStepSeconds);
    const sorted = latencies.slice().sort((a, b) => a - b);
    const median = medianOf(latencies);
    const warned = warnings.length > 0 ? `; warnings: ${warnings.slice(0, 3).join(' | ')}` : '';
    return [
      {
        name: `queue: ${WORKERS} worker processes / pool of ${WORKERS} threads (mulo-mnist units)`,
        value: ratio,
        goal: '<= 1.10',
        ok: ratio <= 1.1,
        detail:
          `${queueRate.toFixed(3)} vs ${poolRate.toFixed(3)} units/s (${units} units each, ${CAPTURED_STEPS} outer steps' units in flight at once × ${ROUNDS} rounds; ` +
          `per round: queue ${queueSeconds.map((s) => s.toFixed(1)).join(', ')} s, pool ${poolSeconds.map((s) => s.toFixed(1)).join(', ')} s)${warned}`,
      },
      {
        name: 'queue / pool, outer step by outer step (as meta-training runs them)',
        value: stepRatio,
        goal: 'informational',
        ok: true,
        detail: `per round: queue ${queueStepSeconds.map((x) => x.toFixed(1)).join(', ')} s, pool ${poolStepSeconds.map((x) => x.toFixed(1)).join(', ')} s (each step waits for its slowest worker)`,
      },
      {
        name: 'queue: median latency per unit (ms)',
        value: median,
        goal: '<= 50',
        ok: median <= 50,
        detail:
          `round trip − worker compute, ${latencies.length} units one at a time: min ${sorted[0]?.toFixed(0)}, max ${sorted[sorted.length - 1]?.toFixed(0)} ms; ` +
          `median in the timed rounds (with waits for a busy worker): ${medianOf(inRounds).toFixed(0)} ms`,
      },
    ];
  } finally {
    await host?.close().catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop()));
    await redis?.close().catch(() => undefined);
    await pool?.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
