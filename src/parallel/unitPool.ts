// Runs serializable "units" of work (plain-object input with typed arrays → plain-object output)
// either in this thread (workers = 0) or in N piscina worker threads, each with its own tfjs
// engine. The pool never touches the computation: a unit's output is whatever
// `units[kind](input)` of the units module returns, in whichever thread it ran.
//
// Faults. A unit that throws is a failure of that unit: the run rejects with the unit's message,
// no retry. A worker that dies under a unit (process.exit, an uncaught error, out of memory) is
// replaced by piscina and the unit is re-run up to `retries` times, with a warning each time.
import { existsSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { initBackend } from '../backend/select.js';
import { kernelMode, kernelThreads } from '../kernels/native.js';
import {
  isUnitStartNotice,
  unitOf,
  unitTableOf,
  type UnitInput,
  type UnitOutput,
  type UnitReply,
  type UnitTable,
  type UnitTask,
  type UnitWorkerData,
} from './protocol.js';
import { printableMessage } from '../text/printable.js';

export interface UnitPoolOptions {
  /** 0 = run units in this thread (no workers); N ≥ 1 = N worker threads. */
  workers: number;
  /** Absolute file URL (import.meta.url style) of a module exporting `units`, a UnitTable. */
  unitsModule: string;
  /** Each worker calls initBackend({ backend, log: () => {} }) once before its first unit. */
  backend: 'tensorflow' | 'wasm' | 'cpu' | 'auto';
  /** Times a unit whose worker crashed is re-run on a fresh worker (default 1). */
  retries?: number;
  /** e.g. "worker 1 crashed (Error: worker exited with code: 1); re-running unit 'pes-truncation'". */
  onWarning?: (message: string) => void;
}

export interface UnitPool<T extends UnitTable = UnitTable> {
  readonly workers: number;
  /** Runs unit `kind` of the table on `input`: both checked by the compiler against T. */
  run<K extends keyof T & string>(kind: K, input: UnitInput<T, K>): Promise<UnitOutput<T, K>>;
  /** Per-worker busy seconds since creation (length max(1, workers)); used for per-worker throughput.
   *  Index i is "worker i" of the warnings; a replacement worker takes over the slot of the one it replaced. */
  busySeconds(): number[];
  close(): Promise<void>;
}

const BUILD_HINT = 'run `npm run build` (tsc) first';

/** A pool for the units module's table T: `createUnitPool<typeof units>({ unitsModule, … })`. */
export async function createUnitPool<T extends UnitTable = UnitTable>(options: UnitPoolOptions): Promise<UnitPool<T>> {
  const workers = options.workers;
  if (!Number.isInteger(workers) || workers < 0) {
    throw new Error(`lopt: unit pool workers must be an integer ≥ 0, got ${workers}`);
  }
  const retries = options.retries ?? 1;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new Error(`lopt: unit pool retries must be an integer ≥ 0, got ${retries}`);
  }
  const warn = options.onWarning ?? ((message: string) => console.error(printableMessage(`lopt: ${message}`)));
  // The untyped pools below move plain data; T only types the callers' side.
  const pool = workers === 0 ? await createInProcessPool(options) : await createWorkerPool(options, workers, retries, warn);
  return pool as unknown as UnitPool<T>;
}

// ---------------------------------------------------------------------------------------------
// workers = 0: this thread, one unit at a time (like a single worker, so the results match).

/** The pools below, before createUnitPool types them. */
interface PlainPool extends Omit<UnitPool, 'run'> {
  run(kind: string, input: unknown): Promise<unknown>;
}

async function createInProcessPool(options: UnitPoolOptions): Promise<PlainPool> {
  await initBackend({ backend: options.backend, log: () => {} });
  const units = unitTableOf((await import(options.unitsModule)) as { units?: unknown }, options.unitsModule);
  let busy = 0;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();

  const runOne = async (kind: string, input: unknown): Promise<unknown> => {
    if (closed) throw new Error(`lopt: unit '${kind}' was not run: the unit pool is closed`);
    const start = performance.now();
    try {
      return await unitOf(units, kind, options.unitsModule)(input);
    } catch (e) {
      throw new Error(`lopt: unit '${kind}' failed: ${messageOf(e)}`, { cause: e });
    } finally {
      busy += (performance.now() - start) / 1000;
    }
  };

  return {
    workers: 0,
    run(kind: string, input: unknown): Promise<unknown> {
      const result = queue.then(() => runOne(kind, input));
      queue = result.catch(() => undefined);
      return result;
    },
    busySeconds: () => [busy],
    async close() {
      closed = true;
      await queue;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// workers ≥ 1: piscina.

async function createWorkerPool(options: UnitPoolOptions, workers: number, retries: number, warn: (message: string) => void): Promise<UnitPool> {
  const unitsFile = toRunnableFile(options.unitsModule, 'units module', warn);
  const entryFile = toRunnableFile(ownSibling('workerEntry'), 'unit pool worker entry', warn);
  const workerData: UnitWorkerData = {
    unitsModule: pathToFileURL(unitsFile).href,
    backend: options.backend,
    kernelThreads: Math.max(1, Math.floor(kernelThreads() / workers)),
    kernels: kernelMode(),
  };
  const pool = new Piscina({
    filename: entryFile,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 1,
    workerData,
  });

  const busy = new Array<number>(workers).fill(0);
  /** slot → threadId of the worker that holds it (-1: none has reported yet). */
  const slotThread = new Array<number>(workers).fill(-1);
  /** token of a running attempt → the threadId that announced it. */
  const started = new Map<number, number>();
  let nextToken = 1;
  let closed = false;

  const slotOf = (tid: number): number => {
    const held = slotThread.indexOf(tid);
    if (held >= 0) return held;
    // A new thread takes the first slot nobody holds, or whose thread is gone (it replaced it).
    const live = new Set(pool.threads.map((w) => w.threadId));
    let slot = slotThread.findIndex((t) => t === -1 || !live.has(t));
    if (slot < 0) slot = 0; // cannot happen: at most `workers` threads live at once
    slotThread[slot] = tid;
    return slot;
  };

  // Piscina replaces a worker that dies, except one that dies while starting (before it is
  // ready): then it stops replacing, and with no worker left its queued tasks would wait
  // forever. So once no worker is left, every unit in flight is failed and the pool is dead.
  const DEAD = Symbol('dead');
  let dead = false;
  let lastCrash: unknown;
  // The attempts in flight, to be failed when the pool dies. (Not a Promise.race against one
  // never-settling promise: each race would leave a reaction on it holding its reply — every
  // unit's arrays — for the pool's life: ≈ 20 MB per outer step of mulo-mnist-v2, an OOM in hours.)
  const inflight = new Set<(e: unknown) => void>();
  const failDead = (e: typeof DEAD): void => {
    for (const reject of inflight) reject(e);
  };
  const deadError = (kind: string): Error =>
    new Error(`lopt: unit '${kind}' failed: the unit pool's worker threads die as they start, and none is left ` + `(last: ${describe(lastCrash)})`, {
      cause: lastCrash,
    });
  const checkAlive = (): void => {
    setImmediate(() => {
      if (closed || dead || pool.threads.length > 0) return;
      dead = true;
      failDead(DEAD);
      void pool.destroy();
    });
  };
  pool.on('workerDestroy', checkAlive);

  pool.on('message', (message: unknown) => {
    if (isUnitStartNotice(message)) {
      started.set(message.token, message.threadId);
      slotOf(message.threadId);
    }
  });
  // A worker that dies with no unit on it (idle, or while starting): piscina emits 'error', which
  // with no listener would throw in this thread, and replaces the worker unless it was starting.
  pool.on('error', (e: unknown) => {
    lastCrash = e;
    if (!closed) warn(`a unit worker crashed while idle or starting (${describe(e)})`);
    checkAlive();
  });

  const attempt = async (kind: string, input: unknown): Promise<{ reply: UnitReply } | { crash: unknown; worker: string }> => {
    const token = nextToken++;
    const task: UnitTask = { kind, input, token };
    try {
      const reply = await new Promise<UnitReply>((resolve, reject) => {
        if (dead) {
          reject(DEAD);
          return;
        }
        inflight.add(reject);
        (pool.run(task) as Promise<UnitReply>).then(resolve, reject).finally(() => inflight.delete(reject));
      });
      return { reply };
    } catch (e) {
      if (e === DEAD) throw deadError(kind);
      lastCrash = e;
      const tid = started.get(token);
      return { crash: e, worker: tid === undefined ? 'a worker' : `worker ${slotOf(tid)}` };
    } finally {
      started.delete(token);
    }
  };

  const run = async <O>(kind: string, input: unknown): Promise<O> => {
    let firstCause: unknown;
    for (let tries = 0; ; tries++) {
      if (closed) throw new Error(`lopt: unit '${kind}' was not run: the unit pool is closed`);
      if (dead) throw deadError(kind);
      const result = await attempt(kind, input);
      if ('reply' in result) {
        const reply = result.reply;
        const slot = slotOf(reply.threadId);
        busy[slot] = (busy[slot] ?? 0) + reply.seconds;
        if (reply.ok) return reply.output as O;
        const cause = Object.assign(new Error(reply.error.message), { name: reply.error.name });
        if (reply.error.stack !== undefined) cause.stack = reply.error.stack;
        throw new Error(`lopt: unit '${kind}' failed in worker ${slot}: ${reply.error.message}`, { cause });
      }
      const { crash, worker } = result;
      if (closed) {
        throw new Error(`lopt: unit '${kind}' was stopped: the unit pool was closed (${describe(crash)})`, { cause: crash });
      }
      if (!isWorkerCrash(crash)) {
        // Failed in this thread before reaching a worker (an input that cannot be cloned): not a crash.
        throw new Error(`lopt: unit '${kind}' could not be sent to a worker: ${messageOf(crash)}`, { cause: crash });
      }
      if (tries === 0) firstCause = crash;
      if (tries >= retries) {
        const times = tries + 1 === 1 ? 'once' : `${tries + 1} times`;
        throw new Error(
          `lopt: unit '${kind}' failed: its worker crashed ${times} (first: ${describe(firstCause)}` + (tries > 0 ? `; last: ${describe(crash)}` : '') + ')',
          { cause: firstCause },
        );
      }
      warn(`${worker} crashed (${describe(crash)}); re-running unit '${kind}'`);
    }
  };

  return {
    workers,
    run,
    busySeconds: () => busy.slice(),
    async close() {
      if (closed) return;
      closed = true;
      await pool.destroy();
    },
  };
}

/** Errors piscina rejects a task with that do not mean a dead worker. */
function isWorkerCrash(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return name !== 'DataCloneError';
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------------
// TypeScript source → compiled dist/ file. Worker threads cannot load .ts under Node 20 (tests
// run this package's TS source through vitest), so <root>/X.ts runs as <root>/dist/X.js, tsc's
// output of the same file (rootDir ".", outDir "dist").

const HERE = fileURLToPath(import.meta.url);

/** The project root: this file is <root>/src/parallel/unitPool.ts or <root>/dist/src/parallel/unitPool.js. */
const PROJECT_ROOT: string | undefined = (() => {
  const dir = dirname(HERE);
  const tail = join('src', 'parallel');
  if (!dir.endsWith(sep + tail)) return undefined;
  const up = resolve(dir, '..', '..');
  return up.endsWith(sep + 'dist') ? dirname(up) : up;
})();

const TS_TO_JS: Record<string, string> = { '.ts': '.js', '.mts': '.mjs', '.cts': '.cjs', '.tsx': '.js' };

/** The path of this file's sibling module `name`, with this file's own extension (.ts or .js). */
function ownSibling(name: string): string {
  return join(dirname(HERE), name + extname(HERE));
}

/** A file path a worker thread can import: `.js` files as they are, project `.ts` files as their dist/ build. */
export function toRunnableFile(urlOrPath: string, what: string, warn?: (message: string) => void): string {
  const path = urlOrPath.startsWith('file:') ? fileURLToPath(urlOrPath) : urlOrPath;
  if (!isAbsolute(path)) {
    throw new Error(`lopt: the ${what} must be an absolute file URL (import.meta.url style), got '${urlOrPath}'`);
  }
  const ext = extname(path);
  const jsExt = TS_TO_JS[ext];
  if (jsExt === undefined) {
    if (!existsSync(path)) throw new Error(`lopt: the ${what} ${path} does not exist`);
    return path;
  }
  const rel = PROJECT_ROOT === undefined ? undefined : relative(PROJECT_ROOT, path);
  if (
    PROJECT_ROOT === undefined ||
    rel === undefined ||
    rel.startsWith('..') ||
    isAbsolute(rel) ||
    rel.split(sep)[0] === 'dist' ||
    rel.split(sep).includes('node_modules')
  ) {
    throw new Error(`lopt: the ${what} ${path} is TypeScript, which worker threads cannot run under Node 20; ` + `pass its compiled .js file instead`);
  }
  const compiled = join(PROJECT_ROOT, 'dist', rel.slice(0, rel.length - ext.length) + jsExt);
  if (!existsSync(compiled)) {
    throw new Error(
      `lopt: worker threads cannot run TypeScript; the ${what} ${path} runs as its compiled form ` + `${compiled}, which is missing: ${BUILD_HINT}`,
    );
  }
  if (existsSync(path) && statSync(path).mtimeMs > statSync(compiled).mtimeMs && warn !== undefined) {
    warn(`the compiled ${what} ${compiled} is older than ${path}; ${BUILD_HINT} so workers run the current code`);
  }
  return compiled;
}
