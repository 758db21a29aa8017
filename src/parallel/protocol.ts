// The messages between the unit pool (src/parallel/unitPool.ts) and its worker entry
// (src/parallel/workerEntry.ts). Plain data only: everything here crosses a structured clone.

/** What the worker's piscina handler receives for one unit. */
export interface UnitTask {
  kind: string;
  input: unknown;
  /** Unique per run attempt; the worker echoes it in its start notice so a crash can be traced to a worker. */
  token: number;
}

/** Posted on the worker's parentPort (piscina re-emits it as the pool's 'message' event) as a unit starts. */
export interface UnitStartNotice {
  loptUnitStart: true;
  token: number;
  threadId: number;
}

/** The error of a unit function that threw: a normal failure, never retried. */
export interface UnitFailure {
  name: string;
  message: string;
  stack?: string;
}

/** What the handler returns. A thrown unit error comes back as `ok: false`, so that every
 *  rejection piscina itself produces means the worker died (exit, uncaught error, OOM). */
export type UnitReply =
  | { ok: true; output: unknown; threadId: number; seconds: number }
  | { ok: false; error: UnitFailure; threadId: number; seconds: number };

/** The pool's workerData. */
export interface UnitWorkerData {
  /** file URL of the (compiled, .js) units module. */
  unitsModule: string;
  backend: 'tensorflow' | 'wasm' | 'cpu' | 'auto';
  /** Threads of the native kernels in each worker: the host's threads shared among the workers. */
  kernelThreads: number;
  /** The host's choice of native kernels or tfjs ops (results differ in float rounding between the two). */
  kernels: 'native' | 'ops';
}

export function isUnitStartNotice(value: unknown): value is UnitStartNotice {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { loptUnitStart?: unknown }).loptUnitStart === true &&
    typeof (value as { token?: unknown }).token === 'number' &&
    typeof (value as { threadId?: unknown }).threadId === 'number'
  );
}
