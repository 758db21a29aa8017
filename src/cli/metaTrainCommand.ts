// `lopt meta-train`: recipe → worker pool → MetaTrainer, with the dashboard or the plain log
// listening to its events, and a held-out comparison against Adam at the end.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend, type BackendName } from '../backend/select.js';
import { createLearnedOptimizer } from '../lopt/registry.js';
import { compareWithAdam } from '../meta/compareWithAdam.js';
import { loadRecipe, parseRecipe, recipeHash, type Recipe } from '../meta/recipe.js';
import type { RunUnit } from '../meta/estimator.js';
import type { MetaTrainListener } from '../meta/events.js';
import { createQueueHost } from '../distributed/queueHost.js';
import { probeQueue } from '../distributed/connect.js';
import { parseQueueUrl, type QueueEndpoint } from '../distributed/queueUrl.js';
import { ownBuild, runIdOf } from '../distributed/unitJob.js';
import { kernelMode } from '../kernels/native.js';
import { listCheckpoints, runPaths } from '../meta/runDir.js';
import { metaTrain } from '../meta/trainer.js';
import { UNITS_MODULE, type Units } from '../units.js';
import { createUnitPool } from '../parallel/unitPool.js';
import { chooseReporter } from './metaTrain/reporter.js';
import { printableMessage } from '../text/printable.js';

export interface MetaTrainCommandOptions {
  recipe?: string;
  resume?: string;
  workers?: number;
  backend?: BackendName | 'auto';
  out?: string;
  continuation?: string;
  /** redis://… — units go to `lopt worker`s through this queue instead of local worker threads. */
  queue?: string;
  /** Seconds Redis may be unreachable before the run stops (default 60). */
  queueTimeout?: number;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

async function resolveRecipe(o: MetaTrainCommandOptions): Promise<{ recipe: Recipe; runDir: string; resume: boolean }> {
  if (o.resume !== undefined) {
    const runDir = o.resume;
    if (!existsSync(runDir)) throw new Error(`meta-train --resume: no folder ${runDir}`);
    // Stopped before its first checkpoint: nothing to continue from, so it starts again from its recipe.
    const resume = (await listCheckpoints(runDir)).length > 0;
    if (!resume && o.recipe === undefined && !existsSync(runPaths(runDir).recipe)) {
      throw new Error(
        `meta-train --resume: ${runDir} holds no checkpoint (looked in ${join(runDir, 'checkpoints')}) and no recipe.json; start it with --recipe FILE --out ${runDir}`,
      );
    }
    if (!resume) console.error(`lopt: ${runDir} holds no checkpoint yet: starting it again from its recipe`);
    if (o.recipe !== undefined) return { recipe: (await loadRecipe(o.recipe)).recipe, runDir, resume };
    const saved = runPaths(runDir).recipe;
    if (!existsSync(saved)) throw new Error(`meta-train --resume: ${runDir} has no recipe.json; pass --recipe FILE`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(saved, 'utf8'));
    } catch (e) {
      throw new Error(`meta-train --resume: ${saved} is not valid JSON (${(e as Error).message})`);
    }
    return { recipe: parseRecipe(json, saved), runDir, resume };
  }
  if (o.recipe === undefined) throw new Error('meta-train: pass --recipe FILE (e.g. meta-train/quick.json) or --resume RUN_DIR');
  const { recipe } = await loadRecipe(o.recipe);
  const runDir = o.out ?? join('runs', `${recipe.name}-${timestamp()}`);
  if ((await listCheckpoints(runDir)).length > 0) {
    throw new Error(`meta-train: ${runDir} already holds a run; continue it with --resume ${runDir}, or choose another --out`);
  }
  return { recipe, runDir, resume: false };
}

/** Local worker threads, or a queue host when --queue is given. */
async function unitRunner(
  endpoint: QueueEndpoint | undefined,
  workers: number,
  backend: BackendName,
  recipe: Recipe,
  runDir: string,
  queueTimeout: number,
  listener: MetaTrainListener,
): Promise<{ run: RunUnit; close(): Promise<void> }> {
  if (endpoint === undefined) {
    const pool = await createUnitPool<Units>({ workers, unitsModule: UNITS_MODULE, backend, onWarning: (message) => listener({ type: 'warning', message }) });
    return { run: (input) => pool.run('truncation', input), close: () => pool.close() };
  }
  // Redis answers (or the command fails here, before any work)…
  await probeQueue(endpoint, queueTimeout);
  // …but the host claims the run on the queue only at the first unit: by then metaTrain holds the
  // run folder's lock, so a second process on the same folder is refused before it can take over
  // the run's session and drop the first one's jobs.
  const hash = recipeHash(recipe);
  const build = await ownBuild(backend, kernelMode());
  let host: ReturnType<typeof createQueueHost> | undefined;
  const started = () =>
    (host ??= createQueueHost({
      endpoint,
      runId: runIdOf(resolve(runDir), hash),
      recipeHash: hash,
      build,
      redisTimeoutSeconds: queueTimeout,
      onEvent: listener,
    }));
  return {
    run: (input, tag) => started().then((h) => h.run(input, tag)),
    close: async () => {
      if (host !== undefined) await (await host.catch(() => undefined))?.close();
    },
  };
}

export async function metaTrainCommand(o: MetaTrainCommandOptions): Promise<number> {
  if (o.continuation !== undefined && (o.resume !== undefined || o.recipe === undefined)) {
    throw new Error('meta-train: --continuation goes with --recipe (not --resume): lopt meta-train --recipe R.json --continuation STATE.lopt');
  }
  if (o.queue !== undefined && o.workers !== undefined) {
    throw new Error(
      'meta-train: --workers sets local worker threads, --queue sends the units to `lopt worker`s; give one (start workers with lopt worker --queue URL --threads N)',
    );
  }
  const endpoint = o.queue !== undefined ? parseQueueUrl(o.queue) : undefined;
  const { recipe, runDir, resume } = await resolveRecipe(o);
  const units = recipe.estimators.reduce((s, e) => s + Math.ceil(e.particles / e.particlesPerUnit), 0);
  const workers = endpoint !== undefined ? 0 : (o.workers ?? Math.min(availableParallelism(), units));
  const backend = await initBackend(o.backend ? { backend: o.backend, log: () => {} } : { log: () => {} });

  const stop = new AbortController();
  const reporter = chooseReporter({
    stdout: process.stdout,
    stdin: process.stdin,
    env: process.env,
    every: recipe.logEvery,
    onStop: () => stop.abort(),
  });
  // Plain mode: the first Ctrl-C stops after the current outer step with a checkpoint; a second one exits.
  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts === 1) {
      console.error('lopt: stopping after this outer step (Ctrl-C again to quit now; the last checkpoint stays)');
      stop.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);

  const runner = await unitRunner(endpoint, workers, backend, recipe, runDir, o.queueTimeout ?? 60, reporter.listener);
  let result;
  try {
    result = await metaTrain({
      recipe,
      runDir,
      resume,
      run: runner.run,
      workers,
      ...(endpoint !== undefined ? { queue: endpoint.display } : {}),
      backend,
      onEvent: reporter.listener,
      signal: stop.signal,
      ...(o.continuation !== undefined ? { continuation: o.continuation } : {}),
    });
  } finally {
    await runner.close();
    await reporter.close();
    process.off('SIGINT', onSigint);
  }
  if (result.status === 'failed') {
    console.error(printableMessage(`lopt: meta-training failed at outer step ${result.step}: ${result.error?.message ?? 'unknown error'}`));
    const again = o.queue !== undefined ? ' --queue <the same URL>' : '';
    if (result.lastCheckpoint)
      console.error(printableMessage(`lopt: the last checkpoint is ${result.lastCheckpoint}; continue with --resume ${runDir}${again}`));
    return 1;
  }
  if (result.status === 'stopped') {
    console.log(
      `stopped at outer step ${result.step}; continue with: lopt meta-train --resume ${runDir}${o.queue !== undefined ? ' --queue <the same URL>' : ''}`,
    );
    if (o.continuation !== undefined)
      console.log(`or on any machine, from the continuation file: lopt meta-train --recipe ${o.recipe} --continuation ${o.continuation}`);
    return 0;
  }
  console.log(`meta-trained theta: ${runPaths(runDir).theta} (metrics: ${runPaths(runDir).metrics})`);
  if (recipe.evaluation) {
    const e = recipe.evaluation;
    const lo = createLearnedOptimizer(recipe.learnedOptimizer.arch, recipe.learnedOptimizer.config);
    console.log(
      `held-out check: ${e.task}, ${e.steps} steps, same init and batches; Adam at ${e.adamLrs.length} learning rates (a small grid, not the tuned comparison of lopt bench)`,
    );
    const rows = compareWithAdam(lo, result.theta, e);
    console.log(`${'optimizer'.padEnd(26)} ${'first'.padStart(8)} ${'final'.padStart(8)} ${'last10%'.padStart(8)} ${'test'.padStart(8)}`);
    for (const r of rows) {
      const f = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x)).padStart(8);
      console.log(`${r.optimizer.padEnd(26)} ${f(r.firstLoss)} ${f(r.finalLoss)} ${f(r.tailLoss)} ${f(r.testLoss)}`);
    }
    const [learned, ...adams] = rows;
    const best = adams.reduce((a, b) => (b.tailLoss < a.tailLoss || !Number.isFinite(a.tailLoss) ? b : a));
    const ratio = learned!.tailLoss / best.tailLoss;
    const at = adams.indexOf(best);
    if (at === 0 || at === adams.length - 1)
      console.log(`note: Adam's best learning rate is at the edge of the grid (${best.optimizer}); a wider grid might do better`);
    console.log(
      `learned / best Adam (${best.optimizer}) training loss over the last 10% of steps: ${Number.isFinite(ratio) ? ratio.toFixed(3) : 'n/a'} (< 1: the learned optimizer is ahead)`,
    );
  }
  return 0;
}
