// The workers a host can see: each `lopt worker` writes a heartbeat key (JSON, expiring) every few
// seconds; the host lists them for the dashboard. And the live session of each run, which tells
// workers which jobs still have a host waiting for them.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { QUEUE_NAME, QUEUE_PREFIX } from './unitJob.js';

const WORKER_KEYS = `${QUEUE_PREFIX}:${QUEUE_NAME}:workers:`;
const SESSION_KEYS = `${QUEUE_PREFIX}:${QUEUE_NAME}:session:`;

/** How often a worker writes its heartbeat; it expires after three missed beats. */
export const HEARTBEAT_MS = 2_000;

const beatSchema = z.strictObject({
  id: z.string().max(300),
  host: z.string().max(255),
  pid: z.number().int(),
  threads: z.number().int().min(1),
  version: z.string().max(100),
  unitsDone: z.number().int().min(0),
  startedAt: z.number(),
  at: z.number(),
});

export type WorkerBeat = z.output<typeof beatSchema>;

export async function writeBeat(redis: Redis, beat: WorkerBeat): Promise<void> {
  await redis.set(WORKER_KEYS + beat.id, JSON.stringify(beat), 'PX', 3 * HEARTBEAT_MS);
}

export async function removeBeat(redis: Redis, id: string): Promise<void> {
  await redis.del(WORKER_KEYS + id);
}

/** Every worker whose heartbeat has not expired; malformed entries are skipped. */
export async function readBeats(redis: Redis): Promise<WorkerBeat[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${WORKER_KEYS}*`, 'COUNT', 200);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0' && keys.length < 10_000);
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  const beats: WorkerBeat[] = [];
  for (const v of values) {
    if (v === null) continue;
    try {
      const parsed = beatSchema.safeParse(JSON.parse(v));
      if (parsed.success) beats.push(parsed.data);
    } catch {
      // not JSON: not a lopt worker's
    }
  }
  return beats.sort((a, b) => a.id.localeCompare(b.id));
}

/** Marks `session` as the one live session of run `runId` (jobs of any other are stale). */
export async function claimSession(redis: Redis, runId: string, session: string): Promise<void> {
  await redis.set(SESSION_KEYS + runId, session);
}

export async function releaseSession(redis: Redis, runId: string, session: string): Promise<void> {
  // Only our own: a newer session of the run may have claimed it since.
  if ((await redis.get(SESSION_KEYS + runId)) === session) await redis.del(SESSION_KEYS + runId);
}

export async function liveSession(redis: Redis, runId: string): Promise<string | null> {
  return redis.get(SESSION_KEYS + runId);
}
