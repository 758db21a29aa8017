// `lopt worker`: takes truncation units from the queue, runs them through a local unit pool (N
// worker threads, N units at once) and returns their results. It runs data only: every job is
// checked by the unit's schema, and one made by another lopt build, backend or kernel path —
// whose result would not be byte-identical — is refused, and the worker stops saying why.
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createUnitPool } from '../parallel/unitPool.js';
import { printable } from '../text/printable.js';
import { UNITS_MODULE, type Units } from '../units.js';
import type { QueueEndpoint } from './queueUrl.js';
import { connectWithin } from './connect.js';
import {
  BLOB_TTL_MS,
  buildMismatch,
  encodeUnitOutput,
  QUEUE_NAME,
  QUEUE_PREFIX,
  readUnitInput,
  readUnitJob,
  unitBlobKey,
  type Build,
  type UnitJobData,
  type UnitReceipt,
} from './unitJob.js';
import type { TruncationUnitInput } from '../meta/truncationUnit.js';
import { HEARTBEAT_MS, liveSession, removeBeat, writeBeat } from './workerRegistry.js';

export interface QueueWorkerOptions {
  endpoint: QueueEndpoint;
  /** Units run at once, each in its own worker thread. */
  threads: number;
  backend: 'tensorflow' | 'wasm' | 'cpu' | 'auto';
  build: Build;
  /** With `--recipe`: units of any other recipe are refused. */
  recipeHash?: string;
  /** Seconds without a lock renewal after which a unit counts as stalled and another worker takes it (default 30). */
  stalledSeconds?: number;
  /** How long to wait for Redis at start-up (default 60 s). */
  connectTimeoutSeconds?: number;
  /** One line per thing worth telling (connected, unit done, refused…). */
  log: (line: string) => void;
  /** Aborting stops taking units; the ones running finish first. */
  signal?: AbortSignal;
}

export interface QueueWorkerResult {
  unitsDone: number;
  /** Set when the worker stopped because it refused a unit. */
  refused?: string;
}

export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorkerResult> {
  const id = `${hostname()}:${process.pid}`;
  const host = hostname();
  const stalledMs = Math.round((o.stalledSeconds ?? 30) * 1000);
  // Redis first: bad credentials or a wrong address fail before any thread starts.
  const redis = new Redis({ ...o.endpoint.connection, lazyConnect: true });
  await connectWithin(redis, (o.connectTimeoutSeconds ?? 60) * 1000, o.endpoint.display);
  const pool = await createUnitPool<Units>({ workers: o.threads, unitsModule: UNITS_MODULE, backend: o.backend, onWarning: (m) => o.log(`warning: ${m}`) });
  let lastError = '';
  let down = false;
  redis.on('error', (e: Error) => {
    if (!down) o.log(`lost Redis at ${o.endpoint.display} (${printable(e.message, 120)}); reconnecting`);
    down = true;
    lastError = e.message;
  });
  redis.on('ready', () => {
    if (down) o.log(`Redis at ${o.endpoint.display} is back`);
    down = false;
  });
  const startedAt = Date.now();
  let unitsDone = 0;
  let refused: string | undefined;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));

  const processUnit = async (job: Job): Promise<unknown> => {
    const rawId = String(job.id);
    const jobId = printable(rawId, 80);
    let unit: UnitJobData;
    try {
      unit = readUnitJob(rawId, job.data);
    } catch (e) {
      throw new Error(`worker ${id} refused unit ${jobId}: ${(e as Error).message}`);
    }
    const mismatch =
      buildMismatch(o.build, unit.build) ??
      (o.recipeHash !== undefined && o.recipeHash !== unit.recipeHash
        ? `it belongs to recipe ${unit.recipeHash.slice(0, 12)}, this worker was started for recipe ${o.recipeHash.slice(0, 12)} (--recipe)`
        : null);
    if (mismatch !== null) {
      refused = `refused unit ${jobId}: ${mismatch} (a result from a different build would not be byte-identical)`;
      o.log(refused);
      stop();
      throw new Error(`worker ${id} ${refused}`);
    }
    const live = await liveSession(redis, unit.runId);
    if (live !== null && live !== unit.session) {
      // Its host is gone and the run was resumed by another: no one will read the result. (No
      // session at all — a restarted Redis before the host re-claims it — is no reason to skip.)
      o.log(`skipped unit ${jobId}: its run is now served by another host session`);
      return { stale: true };
    }
    const bytes = await redis.getBuffer(unitBlobKey(rawId, 'input'));
    if (bytes === null) throw new Error(`worker ${id}: the input of unit ${jobId} is not in Redis (expired, or lost when Redis restarted)`);
    let input: TruncationUnitInput;
    try {
      input = readUnitInput(bytes);
    } catch (e) {
      throw new Error(`worker ${id} refused unit ${jobId}: ${(e as Error).message}`);
    }
    const start = performance.now();
    const output = await pool.run('truncation', input);
    const seconds = (performance.now() - start) / 1000;
    await redis.set(unitBlobKey(rawId, 'output'), encodeUnitOutput(output), 'PX', BLOB_TTL_MS);
    unitsDone += 1;
    o.log(`unit ${jobId} done in ${seconds.toFixed(2)} s`);
    const receipt: UnitReceipt = { worker: { id, host }, seconds };
    return receipt;
  };

  const worker = new Worker(QUEUE_NAME, processUnit, {
    connection: o.endpoint.connection,
    prefix: QUEUE_PREFIX,
    // One unit more than threads: the next unit's input is fetched and decoded while the threads
    // compute, so a busy worker never waits on Redis between units.
    concurrency: o.threads + 1,
    lockDuration: stalledMs,
    stalledInterval: stalledMs,
    maxStalledCount: 1,
    autorun: false,
  });
  worker.on('error', (e: Error) => (lastError = e.message));

  const beat = async (): Promise<void> => {
    if (down) return;
    await writeBeat(redis, { id, host, pid: process.pid, threads: o.threads, version: o.build.version, unitsDone, startedAt, at: Date.now() }).catch(
      () => undefined,
    );
  };
  const beats = setInterval(() => void beat(), HEARTBEAT_MS);
  const onAbort = () => stop();
  o.signal?.addEventListener('abort', onAbort);
  if (o.signal?.aborted) stop();
  try {
    await worker.waitUntilReady();
    await beat();
    o.log(
      `worker ${id} connected to ${o.endpoint.display}: ${o.threads} thread${o.threads === 1 ? '' : 's'}, lopt ${o.build.version}, ${o.build.backend} backend, ${o.build.kernels} kernels`,
    );
    void worker.run().catch((e: Error) => {
      lastError = e.message;
      stop();
    });
    await stopped;
  } finally {
    clearInterval(beats);
    o.signal?.removeEventListener('abort', onAbort);
    // Gracefully (the running units finish) while Redis answers; with Redis gone a graceful close
    // would wait for it forever, so then the worker lets go of its units (their locks expire and
    // other workers take them).
    if (down) await withDeadline(worker.close(true), 5_000);
    else await worker.close().catch(() => undefined);
    await pool.close();
    await withDeadline(removeBeat(redis, id), 2_000);
    redis.disconnect();
  }
  if (lastError !== '' && refused === undefined && !o.signal?.aborted) o.log(`stopped: ${printable(lastError, 200)}`);
  return { unitsDone, ...(refused !== undefined ? { refused } : {}) };
}

async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
