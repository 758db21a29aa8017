// The messages between the unit pool (src/parallel/unitPool.ts) and its worker entry
// (src/parallel/workerEntry.ts). Plain data only: everything here crosses a structured clone.

/**
 * What a units module exports as `units`: every kind of work unit by name, each a function of
 * plain data to plain data (or a promise of it). Its type, given to createUnitPool, types
 * `pool.run(kind, input)`: the kind must be a key, the input and output are that unit's.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each unit has its own input type
export type UnitTable = Record<string, (input: any) => unknown>;
export type UnitInput<T extends UnitTable, K extends keyof T> = Parameters<T[K]>[0];
export type UnitOutput<T extends UnitTable, K extends keyof T> = Awaited<ReturnType<T[K]>>;

/**
 * The unit `kind` of a units module's table, or a clear error. Kinds are looked up as own keys
 * only, so a kind like 'constructor' or '__proto__' from a caller finds nothing.
 */
export function unitOf(units: UnitTable, kind: string, module: string): (input: unknown) => unknown {
  if (!Object.prototype.hasOwnProperty.call(units, kind)) {
    throw new Error(`unknown work unit kind '${kind}' (${module} knows: ${Object.keys(units).join(', ')})`);
  }
  return units[kind]!;
}

/** The `units` table a units module exports, checked. */
export function unitTableOf(mod: { units?: unknown }, module: string): UnitTable {
  const units = mod.units;
  if (typeof units !== 'object' || units === null || !Object.values(units).every((f) => typeof f === 'function')) {
    throw new Error(`lopt: units module ${module} exports no \`units\` table (kind → function of plain data)`);
  }
  return units as UnitTable;
}

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
export type UnitReply = { ok: true; output: unknown; threadId: number; seconds: number } | { ok: false; error: UnitFailure; threadId: number; seconds: number };

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
