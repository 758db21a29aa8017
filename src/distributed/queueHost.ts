// The host side of distributed meta-training: each truncation unit becomes a BullMQ job that any
// `lopt worker` may take; its result comes back through the job's return value. The estimators
// await all their units and sum them in their fixed order, so where a unit ran changes nothing.
//
// Faults: a unit that fails `attempts` times fails the outer step (the trainer then stops with a
// checkpoint). A unit whose worker dies is BullMQ's: its lock expires and another worker takes it.
// Redis going away is watched here: the host warns, waits up to `redisTimeoutSeconds`, then
// fails every unit in flight; jobs a restarted Redis lost are enqueued again (same id, same
// input, so the same result).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { TruncationUnitInput, TruncationUnitOutput } from '../meta/truncationUnit.js';
import type { RunUnit, UnitTag } from '../meta/estimator.js';
import type { WarningEvent, WorkersEvent, WorkerStatus } from '../meta/events.js';
import { printable } from '../text/printable.js';
import type { QueueEndpoint } from './queueUrl.js';
import { connectWithin } from './connect.js';
import {
  BLOB_TTL_MS,
  encodeUnitInput,
  QUEUE_NAME,
  QUEUE_PREFIX,
  readUnitOutput,
  readUnitReceipt,
  UNIT_BLOB_PREFIX,
  unitBlobKey,
  unitJobData,
  unitJobId,
  type Build,
  type UnitJobTag,
} from './unitJob.js';
import { claimSession, HEARTBEAT_MS, readBeats, releaseSession } from './workerRegistry.js';

export interface QueueHostOptions {
  endpoint: QueueEndpoint;
  /** runIdOf(run folder, recipe hash). */
  runId: string;
  recipeHash: string;
  build: Build;
  /** Tries per unit before the outer step fails (default 2). */
  attempts?: number;
  /** How long Redis may be unreachable before every unit in flight fails (default 60 s). */
  redisTimeoutSeconds?: number;
  onEvent?: (event: WarningEvent | WorkersEvent) => void;
}

export interface QueueHost {
  run: RunUnit;
  /** Per unit: round trip minus the worker's compute time, in ms, in completion order. */
  latenciesMs(): number[];
  close(): Promise<void>;
}

interface Pending {
  id: string;
  data: ReturnType<typeof unitJobData>;
  /** The unit's input as stored beside the job (kept to store it again if Redis loses it). */
  input: Buffer;
  /** Set once the job is in the queue: before that, its absence is not a loss. */
  added: boolean;
  innerSteps: number;
  sentAt: number;
  resolve: (output: TruncationUnitOutput) => void;
  reject: (error: Error) => void;
}

const POLL_MS = 2_000;
/** Queue events Redis keeps (approximately): the host reads them as they come. */
const EVENTS_KEPT = 1000;

export async function createQueueHost(o: QueueHostOptions): Promise<QueueHost> {
  const attempts = o.attempts ?? 2;
  const timeoutMs = (o.redisTimeoutSeconds ?? 60) * 1000;
  const emit = o.onEvent ?? (() => undefined);
  const where = o.endpoint.display;
  const session = Date.now().toString(36) + randomBytes(4).toString('hex');

  // Our own client watches the connection (and lists workers); BullMQ's reconnect on their own.
  const redis = new Redis({ ...o.endpoint.connection, lazyConnect: true });
  await connectWithin(redis, timeoutMs, where);
  let lastError = 'no answer';
  redis.on('error', (e: Error) => (lastError = e.message));

  const queue = new Queue(QUEUE_NAME, { connection: o.endpoint.connection, prefix: QUEUE_PREFIX, streams: { events: { maxLen: EVENTS_KEPT } } });
  const events = new QueueEvents(QUEUE_NAME, { connection: o.endpoint.connection, prefix: QUEUE_PREFIX });
  queue.on('error', (e: Error) => (lastError = e.message));
  events.on('error', (e: Error) => (lastError = e.message));
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);

  await claimSession(redis, o.runId, session);
  await dropStaleJobs(queue, redis, o.runId, session);

  const pending = new Map<string, Pending>();
  const latencies: number[] = [];
  /** worker id → [completion time ms, inner steps] over the last minute. */
  const recent = new Map<string, Array<[number, number]>>();
  let closed = false;
  let failure: Error | null = null;
  let downSince: number | null = null;

  const failAll = (error: Error): void => {
    failure = error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };

  redis.on('close', () => {
    if (closed || downSince !== null) return;
    downSince = Date.now();
    emit({ type: 'warning', message: `queue: lost Redis at ${where} (${printable(lastError, 120)}); waiting up to ${timeoutMs / 1000} s for it` });
  });
  redis.on('ready', () => {
    if (closed || downSince === null) return;
    emit({ type: 'warning', message: `queue: Redis at ${where} is back after ${((Date.now() - downSince) / 1000).toFixed(1)} s` });
    downSince = null;
    // A restarted Redis may have lost the jobs; the poll re-enqueues them.
    void poll();
  });

  // Called by the events (with the result they carry), after an add and by the poll (without),
  // possibly at once for one id; one call wins. Without a result the state is read before the
  // job: a job read while active has no return value yet.
  const settling = new Map<string, { again: boolean }>();
  const settle = async (id: string, known?: { returnvalue: unknown }): Promise<void> => {
    if (!pending.has(id)) return;
    const busy = settling.get(id);
    if (busy !== undefined) {
      busy.again = true; // the call in progress may have read the state just before it changed
      return;
    }
    const mark = { again: false };
    settling.set(id, mark);
    try {
      let returnvalue: unknown;
      let failure: string | undefined;
      if (known !== undefined) returnvalue = known.returnvalue;
      else {
        const state = await queue.getJobState(id);
        if (state !== 'completed' && state !== 'failed') return;
        const job = await queue.getJob(id);
        if (job === undefined) return; // removed: the poll enqueues it again
        if (state === 'failed') {
          const tries = job.attemptsMade;
          failure = `failed ${tries === 1 ? 'once' : `${tries} times`}: ${printable(job.failedReason ?? 'no reason given', 2000)}`;
        } else returnvalue = job.returnvalue;
      }
      const p = pending.get(id);
      if (p === undefined) return;
      pending.delete(id);
      if (failure !== undefined) p.reject(new Error(`queue: unit ${id} ${failure}`));
      else if ((returnvalue as { stale?: unknown } | null)?.stale === true) {
        p.reject(new Error(`queue: unit ${id} was skipped by its worker: another host session has taken over this run (--resume elsewhere?)`));
      } else {
        try {
          const receipt = readUnitReceipt(returnvalue);
          const bytes = await redis.getBuffer(unitBlobKey(id, 'output'));
          if (bytes === null) {
            // Lost between the worker's write and this read (a Redis restart): run it again.
            pending.set(id, p);
            await queue.remove(id).catch(() => undefined);
            emit({ type: 'warning', message: `queue: the output of unit ${id} was lost by Redis; enqueued again` });
            return;
          }
          const output = readUnitOutput(bytes);
          latencies.push(Math.max(0, performance.now() - p.sentAt - receipt.seconds * 1000));
          const list = recent.get(receipt.worker.id) ?? [];
          list.push([Date.now(), p.innerSteps]);
          recent.set(receipt.worker.id, list);
          p.resolve(output);
        } catch (e) {
          p.reject(new Error(`queue: unit ${id}: ${(e as Error).message}`));
        }
      }
      void redis.del(unitBlobKey(id, 'input'), unitBlobKey(id, 'output')).catch(() => undefined);
    } finally {
      settling.delete(id);
      if (mark.again) void settle(id).catch(() => undefined);
    }
  };

  events.on('completed', ({ jobId, returnvalue }) => void settle(jobId, { returnvalue }).catch(() => undefined));
  events.on('failed', ({ jobId }) => void settle(jobId).catch(() => undefined));
  events.on('stalled', ({ jobId }) => {
    if (pending.has(jobId))
      emit({
        type: 'warning',
        message: `queue: unit ${printable(jobId, 80)} stalled (its worker stopped answering); it goes back to the queue for another worker`,
      });
  });

  // The events are the fast path; this poll catches what they miss (a reconnect, a restarted
  // Redis that lost the jobs) and enforces the Redis timeout.
  let polling = false;
  const poll = async (): Promise<void> => {
    if (closed || polling) return;
    if (downSince !== null) {
      if (Date.now() - downSince > timeoutMs && pending.size > 0) {
        failAll(new Error(`queue: Redis at ${where} unreachable for ${timeoutMs / 1000} s (${printable(lastError, 120)})`));
      }
      return;
    }
    polling = true;
    try {
      // Again at every poll: a restarted Redis has forgotten it (the run lock keeps other hosts of this run away).
      await claimSession(redis, o.runId, session);
      let requeued = 0;
      for (const p of [...pending.values()]) {
        if (!p.added) continue;
        const state = await queue.getJobState(p.id);
        if (!pending.has(p.id)) continue;
        if (state === 'unknown') {
          await redis.set(unitBlobKey(p.id, 'input'), p.input, 'PX', BLOB_TTL_MS);
          await queue.add('truncation', p.data, jobOptions(p.id, attempts));
          requeued += 1;
        } else if (state === 'completed' || state === 'failed') await settle(p.id);
      }
      // Inputs of units still waiting for a worker must not expire while the host waits.
      if (pending.size > 0) {
        const refresh = redis.pipeline();
        for (const p of pending.values()) refresh.pexpire(unitBlobKey(p.id, 'input'), BLOB_TTL_MS);
        await refresh.exec();
      }
      if (requeued > 0) emit({ type: 'warning', message: `queue: Redis had lost ${requeued} unit${requeued === 1 ? '' : 's'} (restarted?); enqueued again` });
      emit({ type: 'workers', workers: statuses(await readBeats(redis)) });
    } catch {
      // Redis went away mid-poll: the 'close' handler and the next poll deal with it.
    } finally {
      polling = false;
    }
  };
  const statuses = (beats: Awaited<ReturnType<typeof readBeats>>): WorkerStatus[] => {
    const now = Date.now();
    return beats.map((b) => {
      const list = (recent.get(b.id) ?? []).filter(([t]) => now - t <= 60_000);
      recent.set(b.id, list);
      const steps = list.reduce((s, [, n]) => s + n, 0);
      const span = Math.min(60, Math.max(1, (now - b.startedAt) / 1000));
      return {
        id: b.id,
        host: b.host,
        threads: b.threads,
        unitsDone: b.unitsDone,
        lastSeenSeconds: Math.max(0, (now - b.at) / 1000),
        innerStepsPerSecond: steps / span,
      };
    });
  };
  const timer = setInterval(() => void poll(), Math.min(POLL_MS, HEARTBEAT_MS));
  await poll(); // the workers already connected, before the first unit

  const run: RunUnit = (input: TruncationUnitInput, tag: UnitTag & { estimator: number }) => {
    if (failure !== null) return Promise.reject(failure);
    if (closed) return Promise.reject(new Error('queue: the host is closed'));
    const jobTag: UnitJobTag = { runId: o.runId, session, outerStep: tag.outerStep, estimator: tag.estimator, unit: tag.unit };
    const id = unitJobId(jobTag);
    const data = unitJobData(jobTag, o.build, o.recipeHash);
    const bytes = encodeUnitInput(input);
    return new Promise<TruncationUnitOutput>((resolve, reject) => {
      const p: Pending = {
        id,
        data,
        input: bytes,
        added: false,
        innerSteps: input.particles.length * 2 * input.steps,
        sentAt: performance.now(),
        resolve,
        reject,
      };
      pending.set(id, p);
      // The input on the host's own connection first, then the job that names it.
      redis
        .set(unitBlobKey(id, 'input'), bytes, 'PX', BLOB_TTL_MS)
        .then(() => queue.add('truncation', data, jobOptions(id, attempts)))
        .then(
          () => {
            p.added = true;
            void settle(id).catch(() => undefined);
          },
          (e: Error) => {
            if (pending.delete(id)) reject(new Error(`queue: could not enqueue unit ${id}: ${printable(e.message, 200)}`));
          },
        );
    });
  };

  return {
    run,
    latenciesMs: () => latencies.slice(),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      const left = [...pending.keys()];
      failAll(new Error('queue: the host is closed'));
      // Leave nothing of this session for the workers (best effort: Redis may be gone).
      await withTimeout(
        (async () => {
          await dropStaleJobs(queue, redis, o.runId, null);
          if (left.length > 0) await redis.del(...left.flatMap((id) => [unitBlobKey(id, 'input'), unitBlobKey(id, 'output')]));
          await releaseSession(redis, o.runId, session);
        })(),
        3_000,
      ).catch(() => undefined);
      await withTimeout(Promise.all([queue.close(), events.close()]), 3_000).catch(() => Promise.all([queue.disconnect(), events.disconnect()]));
      redis.disconnect();
    },
  };
}

/**
 * Receipts reach the host in the completion event; the last finished jobs stay in Redis so that
 * the poll can still read one whose event was missed (one trimmed before that is simply run
 * again: same input, same result), and BullMQ trims the rest as jobs finish.
 */
const KEEP_FINISHED = 1000;

function jobOptions(id: string, attempts: number) {
  return { jobId: id, attempts, removeOnComplete: { count: KEEP_FINISHED }, removeOnFail: { count: 1000 } };
}

/** Removes the run's jobs still waiting that belong to another session (or to any, with null). */
/** Removes the run's jobs not running now, and their stored inputs and outputs, that belong to another session (or to any, with null). */
async function dropStaleJobs(queue: Queue, redis: Redis, runId: string, keep: string | null): Promise<void> {
  const stale = (id: string) => id.startsWith(`${runId}.`) && !(keep !== null && id.startsWith(`${runId}.${keep}.`));
  const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'completed', 'failed']);
  for (const job of jobs) {
    if (job?.id !== undefined && stale(job.id)) await job.remove().catch(() => undefined); // active ones are locked: their workers find the session gone
  }
  const prefix = UNIT_BLOB_PREFIX;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}${runId}.*`, 'COUNT', 500);
    cursor = next;
    const drop = keys.filter((k) => stale(k.slice(prefix.length)));
    if (drop.length > 0) await redis.del(...drop);
  } while (cursor !== '0');
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
