// The piscina worker module of the unit pool (src/parallel/unitPool.ts). Each worker thread has
// its own tfjs engine: on its first unit it initialises the backend named in workerData and
// imports the units module, then runs `units[kind](input)` for every task it is given.
// Worker threads cannot run TypeScript under Node 20, so the pool always starts the compiled
// dist/src/parallel/workerEntry.js (see toRunnableFile in unitPool.ts).
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { initBackend } from '../backend/select.js';
import { setKernelThreads, useKernels } from '../kernels/native.js';
import { unitOf, unitTableOf, type UnitFailure, type UnitReply, type UnitStartNotice, type UnitTable, type UnitTask, type UnitWorkerData } from './protocol.js';

let ready: Promise<UnitTable> | undefined;

async function prepare(): Promise<UnitTable> {
  const data = workerData as UnitWorkerData;
  await initBackend({ backend: data.backend, log: () => {} });
  setKernelThreads(data.kernelThreads);
  useKernels(data.kernels);
  return unitTableOf((await import(data.unitsModule)) as { units?: unknown }, data.unitsModule);
}

export default async function runTask(task: UnitTask): Promise<unknown> {
  const notice: UnitStartNotice = { loptUnitStart: true, token: task.token, threadId };
  parentPort?.postMessage(notice);
  const start = performance.now();
  let reply: UnitReply;
  try {
    ready ??= prepare();
    const units = await ready;
    const output = await unitOf(units, task.kind, (workerData as UnitWorkerData).unitsModule)(task.input);
    reply = { ok: true, output, threadId, seconds: (performance.now() - start) / 1000 };
  } catch (e) {
    reply = { ok: false, error: toFailure(e), threadId, seconds: (performance.now() - start) / 1000 };
  }
  if (!reply.ok) return reply;
  const buffers = transferableBuffers(reply.output);
  if (buffers.length === 0) return reply;
  // A custom piscina Transferable: the worker posts kValue with kTransferable as the transfer list.
  const movable = { [transferableSymbol]: buffers, [valueSymbol]: reply };
  return move(movable as unknown as Parameters<typeof move>[0]);
}

function toFailure(e: unknown): UnitFailure {
  if (e instanceof Error) {
    const f: UnitFailure = { name: e.name, message: e.message };
    if (e.stack !== undefined) f.stack = e.stack;
    return f;
  }
  return { name: 'Error', message: String(e) };
}

/**
 * The ArrayBuffers behind the typed arrays (and bare ArrayBuffers) in `value`, walking plain
 * objects and arrays. Only buffers a view covers whole are moved: a view into a larger buffer
 * (a wasm heap, a pooled allocation) is copied instead, and shared buffers cannot be moved.
 */
export function transferableBuffers(value: unknown): ArrayBuffer[] {
  const found = new Set<ArrayBuffer>();
  const seen = new Set<object>();
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      const buf = v.buffer;
      if (buf instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === buf.byteLength && buf.byteLength > 0) {
        found.add(buf);
      }
      return;
    }
    if (v instanceof ArrayBuffer) {
      if (v.byteLength > 0) found.add(v);
      return;
    }
    if (Array.isArray(v)) {
      for (const item of v) visit(item);
      return;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return;
    for (const item of Object.values(v)) visit(item);
  };
  visit(value);
  return [...found];
}
