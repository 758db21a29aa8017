// Meta-training through a Redis queue (BullMQ) with `lopt worker` processes: the same theta, byte
// for byte, as a local run — and the faults: a unit that fails twice, Redis restarted or gone,
// a worker killed mid-unit, the host killed, a worker of another build, credentials.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { loadCheckpoint } from '../src/checkpoint/index.js';
import { createQueueHost } from '../src/distributed/queueHost.js';
import { parseQueueUrl } from '../src/distributed/queueUrl.js';
import { ownBuild, QUEUE_NAME, QUEUE_PREFIX, runIdOf, unitJobData } from '../src/distributed/unitJob.js';
import { kernelMode } from '../src/kernels/native.js';
import type { RunUnit } from '../src/meta/estimator.js';
import type { MetaTrainEvent } from '../src/meta/events.js';
import { parseRecipe, recipeHash, type Recipe } from '../src/meta/recipe.js';
import { listCheckpoints, runPaths } from '../src/meta/runDir.js';
import { metaTrain, type MetaTrainResult } from '../src/meta/trainer.js';
import { createUnitPool } from '../src/parallel/unitPool.js';
import { UNITS_MODULE, type Units } from '../src/units.js';
import { freePort, startRedis, type RedisServer } from './helpers/redisServer.js';
import { spawnLopt, spawnWorker, type WorkerProcess } from './helpers/queueWorkers.js';

let redis: RedisServer;
let dir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'lopt-queue-'));
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.close();
  await rm(dir, { recursive: true, force: true });
});

function recipeJson(outerSteps: number) {
  return {
    name: 'queue',
    seed: 7,
    learnedOptimizer: { arch: 'small_fc_lopt', config: {} },
    estimators: [
      {
        type: 'truncated-pes',
        family: { type: 'mlp', widths: [16], batchSize: { min: 32, max: 32 } },
        particles: 4,
        particlesPerUnit: 1,
        truncationLength: 4,
        episodeLength: { min: 6, max: 12 },
        initialOffset: 6,
      },
    ],
    outerSteps,
    outer: { peakLr: 0.01, warmupSteps: 1 },
    checkpoint: { everySteps: 1, everyMinutes: 10, keep: 3 },
  };
}
const recipeOf = (outerSteps: number): Recipe => parseRecipe(recipeJson(outerSteps), 'queue');

const local = new Map<number, Buffer>();
/** Theta after `outerSteps` of the local run (this thread), the reference. */
async function localTheta(outerSteps: number): Promise<Buffer> {
  const known = local.get(outerSteps);
  if (known !== undefined) return known;
  const pool = await createUnitPool<Units>({ workers: 0, unitsModule: UNITS_MODULE, backend: 'wasm' });
  try {
    const r = await metaTrain({
      recipe: recipeOf(outerSteps),
      runDir: join(dir, `local-${outerSteps}`),
      run: (input) => pool.run('truncation', input),
      workers: 0,
      backend: 'wasm',
    });
    expect(r.status).toBe('done');
    const bytes = Buffer.from(r.theta.buffer, r.theta.byteOffset, r.theta.byteLength);
    local.set(outerSteps, bytes);
    return bytes;
  } finally {
    await pool.close();
  }
}

const thetaBytes = (r: MetaTrainResult) => Buffer.from(r.theta.buffer, r.theta.byteOffset, r.theta.byteLength);

interface HostRun {
  result: MetaTrainResult;
  events: MetaTrainEvent[];
  latencies: number[];
}

async function hostRun(o: {
  runDir: string;
  outerSteps: number;
  resume?: boolean;
  redisTimeoutSeconds?: number;
  wrap?: (run: RunUnit) => RunUnit;
  onEvent?: (e: MetaTrainEvent) => void;
}): Promise<HostRun> {
  const recipe = recipeOf(o.outerSteps);
  const events: MetaTrainEvent[] = [];
  const listen = (e: MetaTrainEvent) => {
    events.push(e);
    o.onEvent?.(e);
  };
  const host = await createQueueHost({
    endpoint: parseQueueUrl(redis.url),
    runId: runIdOf(resolve(o.runDir), recipeHash(recipe)),
    recipeHash: recipeHash(recipe),
    build: await ownBuild('wasm', kernelMode()),
    redisTimeoutSeconds: o.redisTimeoutSeconds ?? 60,
    onEvent: listen,
  });
  try {
    const result = await metaTrain({
      recipe,
      runDir: o.runDir,
      resume: o.resume ?? false,
      run: o.wrap ? o.wrap(host.run) : host.run,
      workers: 0,
      queue: redis.url,
      backend: 'wasm',
      onEvent: listen,
    });
    return { result, events, latencies: host.latenciesMs() };
  } finally {
    await host.close();
  }
}

function expectDone(r: MetaTrainResult): void {
  expect(r.error?.message).toBeUndefined();
  expect(r.status).toBe('done');
}

const warnings = (events: MetaTrainEvent[]) => events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
const doneUnits = (w: WorkerProcess) => (w.log().match(/ done in /g) ?? []).length;

async function startWorkers(n: number, extra: string[] = []): Promise<WorkerProcess[]> {
  const started = Array.from({ length: n }, () => spawnWorker(redis.url, extra));
  workers.push(...started);
  await Promise.all(started.map((w) => w.waitFor(/connected to redis:\/\/127\.0\.0\.1:\d+\/0: 1 thread/)));
  return started;
}

/** At least n workers running (the tests share them; some stop them). */
async function ensureWorkers(n: number): Promise<void> {
  const live = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
  if (live.length < n) await startWorkers(n - live.length);
}

async function stopAll(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGTERM')));
}

describe('meta-training through the queue', () => {
  it('a host and two lopt worker processes give the local run’s theta, byte for byte', async () => {
    const [a, b] = await startWorkers(2);
    const run = await hostRun({ runDir: join(dir, 'two-workers'), outerSteps: 3 });
    expectDone(run.result);
    expect(thetaBytes(run.result).equals(await localTheta(3))).toBe(true);
    // Both took part, and the host saw both (the dashboard's list).
    expect(doneUnits(a!)).toBeGreaterThan(0);
    expect(doneUnits(b!)).toBeGreaterThan(0);
    expect(doneUnits(a!) + doneUnits(b!)).toBe(3 * 4);
    const seen = run.events.filter((e) => e.type === 'workers').flatMap((e) => (e.type === 'workers' ? e.workers.map((w) => w.id) : []));
    expect(new Set(seen).size).toBeGreaterThanOrEqual(2);
    expect(run.events.find((e) => e.type === 'run-start')).toMatchObject({ queue: redis.url, workers: 0 });
    expect(run.latencies).toHaveLength(12);
  });

  it('a unit that fails twice stops the run with a checkpoint and the unit’s error', async () => {
    await ensureWorkers(2);
    const runDir = join(dir, 'fails');
    // From outer step 1 on, every unit is sent with a theta of the wrong size: the unit throws on every attempt.
    const wrap =
      (run: RunUnit): RunUnit =>
      (input, tag) =>
        run(tag.outerStep >= 1 ? { ...input, thetas: new Float32Array(3) } : input, tag);
    const run = await hostRun({ runDir, outerSteps: 3, wrap });
    expect(run.result.status).toBe('failed');
    expect(run.result.step).toBe(1);
    expect(run.result.error?.message).toMatch(/failed 2 times: .*thetas hold 3 values/);
    expect(run.result.lastCheckpoint).toMatch(/step-00000001\.lopt$/);
    expect((await listCheckpoints(runDir)).map((c) => c.step)).toEqual([1]);
  });

  it('Redis restarted mid-run: the host says so, re-enqueues what was lost, and the theta is unchanged', async () => {
    await ensureWorkers(2);
    let restarted: Promise<void> | undefined;
    const run = await hostRun({
      runDir: join(dir, 'redis-restart'),
      outerSteps: 4,
      onEvent: (e) => {
        if (e.type === 'outer-step' && e.step === 2 && restarted === undefined) {
          restarted = (async () => {
            await redis.stop();
            await new Promise((r) => setTimeout(r, 500));
            await redis.start();
          })();
        }
      },
    });
    await restarted;
    expectDone(run.result);
    expect(thetaBytes(run.result).equals(await localTheta(4))).toBe(true);
    expect(warnings(run.events).join('\n')).toMatch(/lost Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    expect(warnings(run.events).join('\n')).toMatch(/Redis at .* is back after/);
  });

  it('Redis gone past the timeout: the run stops with a checkpoint; --resume continues to the same theta', async () => {
    await ensureWorkers(2);
    const runDir = join(dir, 'redis-gone');
    let stopped: Promise<void> | undefined;
    const first = await hostRun({
      runDir,
      outerSteps: 4,
      redisTimeoutSeconds: 2,
      onEvent: (e) => {
        if (e.type === 'outer-step' && e.step === 2 && stopped === undefined) stopped = redis.stop();
      },
    });
    await stopped;
    expect(first.result.status).toBe('failed');
    expect(first.result.error?.message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0 unreachable for 2 s/);
    expect(first.result.step).toBe(2);
    expect((await listCheckpoints(runDir)).map((c) => c.step)).toContain(2);
    await redis.start();
    const second = await hostRun({ runDir, outerSteps: 4, resume: true });
    expectDone(second.result);
    expect(thetaBytes(second.result).equals(await localTheta(4))).toBe(true);
  });

  it('a worker killed (SIGKILL) mid-unit: another takes the unit after the stalled timeout, same theta', async () => {
    await stopAll();
    const [a] = await startWorkers(1, ['--stalled-timeout', '1']);
    const queue = new Queue(QUEUE_NAME, { connection: parseQueueUrl(redis.url).connection, prefix: QUEUE_PREFIX });
    let b: WorkerProcess | undefined;
    try {
      const running = hostRun({ runDir: join(dir, 'worker-killed'), outerSteps: 2 });
      // The first unit of a fresh worker includes its tfjs start-up: long enough to catch it active.
      while ((await queue.getActiveCount()) === 0) await new Promise((r) => setTimeout(r, 10));
      await a!.stop('SIGKILL');
      [b] = await startWorkers(1, ['--stalled-timeout', '1']);
      const run = await running;
      expectDone(run.result);
      expect(thetaBytes(run.result).equals(await localTheta(2))).toBe(true);
      expect(doneUnits(a!)).toBe(0);
      expect(doneUnits(b!)).toBe(2 * 4);
      expect(warnings(run.events).join('\n')).toMatch(/stalled \(its worker stopped answering\)/);
    } finally {
      await queue.close();
    }
  });

  it('the host killed (SIGKILL): --resume continues to the same theta; the dead session’s jobs are never used', async () => {
    await stopAll();
    await startWorkers(2);
    const runDir = join(dir, 'host-killed');
    const recipeFile = join(dir, 'host-killed.json');
    await writeFile(recipeFile, JSON.stringify(recipeJson(6)));
    const host = spawnLopt(['meta-train', '--recipe', recipeFile, '--out', runDir, '--queue', redis.url, '--backend', 'wasm']);
    while ((await listCheckpoints(runDir)).length < 2) {
      if (host.proc.exitCode !== null) throw new Error(`the host ended early: ${host.log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await host.stop('SIGKILL');
    const runId = runIdOf(resolve(runDir), recipeHash(recipeOf(6)));
    const queue = new Queue(QUEUE_NAME, { connection: parseQueueUrl(redis.url).connection, prefix: QUEUE_PREFIX });
    try {
      const ofRun = async () =>
        (await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'])).filter((j) => j?.id?.startsWith(`${runId}.`));
      const deadSession = new Set((await ofRun()).map((j) => j.id!.split('.')[1]));
      // A lock of a dead process is taken over once stale (30 s): age it instead of waiting.
      const old = new Date(Date.now() - 120_000);
      await utimes(`${runDir}.lock`, old, old);
      const resumed = spawnLopt(['meta-train', '--resume', runDir, '--queue', redis.url, '--backend', 'wasm']);
      expect(await resumed.exited).toBe(0);
      expect(resumed.log()).toMatch(/queue=redis:\/\/127\.0\.0\.1:\d+\/0/);
      const theta = (await loadCheckpoint(runPaths(runDir).theta)).theta.data;
      const bytes = Buffer.concat(theta.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
      expect(bytes.equals(await localTheta(6))).toBe(true);
      // Nothing of the run is left in Redis, the dead session's jobs and stored inputs included.
      const left = await ofRun();
      expect(left.map((j) => j.id)).toEqual([]);
      const client = new Redis(parseQueueUrl(redis.url).connection);
      try {
        expect(await client.keys(`lopt:units:blob:${runId}.*`)).toEqual([]);
      } finally {
        client.disconnect();
      }
      void deadSession;
    } finally {
      await queue.close();
    }
  });

  it('a second host on a running folder is refused before it touches the queue; the first run is unharmed', async () => {
    await ensureWorkers(2);
    // Long enough that the first host is still running when the second one has started.
    const STEPS = 60;
    const runDir = join(dir, 'two-hosts');
    const recipeFile = join(dir, 'two-hosts.json');
    await writeFile(recipeFile, JSON.stringify(recipeJson(STEPS)));
    const first = spawnLopt(['meta-train', '--recipe', recipeFile, '--out', runDir, '--queue', redis.url, '--backend', 'wasm']);
    while ((await listCheckpoints(runDir)).length < 1) {
      if (first.proc.exitCode !== null) throw new Error(`the first host ended early: ${first.log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const second = spawnLopt(['meta-train', '--resume', runDir, '--queue', redis.url, '--backend', 'wasm']);
    expect(await second.exited).toBe(1);
    expect(second.log()).toMatch(/is in use by/);
    expect(first.proc.exitCode).toBeNull(); // the refusal came while the first run was going
    expect(await first.exited).toBe(0);
    expect(first.log()).not.toMatch(/skipped|another host session/);
    const theta = (await loadCheckpoint(runPaths(runDir).theta)).theta.data;
    expect(Buffer.concat(theta.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))).equals(await localTheta(STEPS))).toBe(true);
  });

  it('a worker refuses a unit of another lopt version (or recipe), says why, and stops', async () => {
    await stopAll();
    const recipe = recipeOf(1);
    const queue = new Queue(QUEUE_NAME, { connection: parseQueueUrl(redis.url).connection, prefix: QUEUE_PREFIX });
    try {
      const build = await ownBuild('wasm', kernelMode());
      const tag = { runId: 'other', session: 's1', outerStep: 0, estimator: 0, unit: 0 };
      await queue.add('truncation', unitJobData(tag, { ...build, version: '9.9.9' }, recipeHash(recipe)), { jobId: 'other.s1.s0.e0.u0', attempts: 2 });
      const [w] = await startWorkers(1);
      expect(await w!.exited).toBe(2);
      expect(w!.log()).toMatch(/refused unit other\.s1\.s0\.e0\.u0: it was made by lopt 9\.9\.9, this worker runs lopt \d+\.\d+\.\d+/);
      await queue.obliterate({ force: true });

      const recipeFile = join(dir, 'pinned.json');
      await writeFile(recipeFile, JSON.stringify({ ...recipeJson(1), seed: 8 }));
      await queue.add('truncation', unitJobData(tag, build, recipeHash(recipe)), { jobId: 'other.s1.s0.e0.u0', attempts: 2 });
      const [pinned] = await startWorkers(1, ['--recipe', recipeFile]);
      expect(await pinned!.exited).toBe(2);
      expect(pinned!.log()).toMatch(/refused unit other\.s1\.s0\.e0\.u0: it belongs to recipe [0-9a-f]{12}, this worker was started for recipe [0-9a-f]{12}/);
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
  });
});

describe('a worker whose Redis is gone', () => {
  it('still stops on SIGTERM', async () => {
    const own = await startRedis();
    const w = spawnWorker(own.url);
    try {
      await w.waitFor(/connected to redis:/);
      await own.stop();
      await w.waitFor(/lost Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
      const started = Date.now();
      expect(await w.stop('SIGTERM')).toBe(0);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await w.stop('SIGKILL');
      await own.close();
    }
  });
});

describe('TLS', () => {
  it('rediss:// connects to a Redis with TLS, trusting a private CA through NODE_EXTRA_CA_CERTS', async () => {
    const tlsDir = await mkdtemp(join(tmpdir(), 'lopt-tls-'));
    const cert = join(tlsDir, 'cert.pem');
    const key = join(tlsDir, 'key.pem');
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    expect(made.status, `openssl: ${String(made.stderr)}`).toBe(0);
    const port = await freePort();
    const server = spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--tls-cert-file',
        cert,
        '--tls-key-file',
        key,
        '--tls-auth-clients',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        tlsDir,
      ],
      { stdio: 'ignore' },
    );
    const worker = spawnWorker(`rediss://127.0.0.1:${port}`, [], { NODE_EXTRA_CA_CERTS: cert });
    try {
      await worker.waitFor(new RegExp(`connected to rediss://127\\.0\\.0\\.1:${port}/0`));
    } finally {
      await worker.stop();
      server.kill('SIGKILL');
      await rm(tlsDir, { recursive: true, force: true });
    }
  });
});

describe('credentials', () => {
  let secured: RedisServer;
  beforeAll(async () => {
    secured = await startRedis({ password: 'hunter2-secret' });
  });
  afterAll(async () => {
    await secured?.close();
  });

  it('from the URL or LOPT_REDIS_PASSWORD, never printed; a wrong one is a clear error', async () => {
    const fromUrl = spawnWorker(`redis://:hunter2-secret@127.0.0.1:${secured.port}`);
    const fromEnv = spawnWorker(`redis://127.0.0.1:${secured.port}`, [], { LOPT_REDIS_PASSWORD: 'hunter2-secret' });
    const wrong = spawnWorker(`redis://:not-it@127.0.0.1:${secured.port}`);
    try {
      await fromUrl.waitFor(/connected to redis:\/\/127\.0\.0\.1:\d+\/0/);
      await fromEnv.waitFor(/connected to redis:\/\/127\.0\.0\.1:\d+\/0/);
      expect(await wrong.exited).toBe(1);
      expect(wrong.log()).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0 refused the connection: WRONGPASS/);
    } finally {
      await Promise.all([fromUrl.stop(), fromEnv.stop(), wrong.stop()]);
    }
    for (const w of [fromUrl, fromEnv, wrong]) {
      expect(w.log()).not.toContain('hunter2');
      expect(w.log()).not.toContain('not-it');
    }
  });
});
