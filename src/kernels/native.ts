// The native kernels (src/kernels/native/*.c, built by `npm install` into dist/native/): loaded
// once, optional. `LOPT_KERNELS=ops` (or useKernels('ops')) forces the tfjs-ops reference path;
// `LOPT_THREADS=N` sets the kernels' threads (default: every core on the main thread; the unit
// pool gives each worker its share, see src/parallel/unitPool.ts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { registerKernelProvider, type NativeKernels } from './registry.js';

export { cpuKernels, type NativeKernels } from './registry.js';

export type KernelMode = 'native' | 'ops';

// From src/kernels (tests) and from dist/src/kernels (the built package).
const CANDIDATES = ['../../dist/native/lopt_kernels.node', '../../native/lopt_kernels.node'];

let loaded: NativeKernels | null | undefined;
let loadError: string | null = null;
// Read from the environment on first use, so that a bad value is an error of the command that
// uses the kernels (which reports it), not of loading this module.
let mode: KernelMode | undefined;
let threads: number | undefined;
const currentMode = (): KernelMode => (mode ??= parseMode(process.env['LOPT_KERNELS']));

function parseMode(v: string | undefined): KernelMode {
  if (v === undefined || v === '' || v === 'native') return 'native';
  if (v === 'ops') return 'ops';
  throw new Error(`LOPT_KERNELS must be 'native' or 'ops'; got ${JSON.stringify(v.slice(0, 40))}`);
}

function parseThreads(v: string | undefined): number {
  if (v === undefined || v === '') return isMainThread ? availableParallelism() : 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`LOPT_THREADS must be an integer in [1, 256]; got ${JSON.stringify(v.slice(0, 40))}`);
  return n;
}

function load(): NativeKernels | null {
  const require = createRequire(import.meta.url);
  // OpenMP threads that wait at a barrier sleep instead of spinning (read once, when the kernels'
  // libgomp loads): on a machine whose cores are busy with other work, a spinning waiter takes a
  // core from the thread doing the work (VeLO's step ran 2× slower on 2 threads than on 1).
  process.env['OMP_WAIT_POLICY'] ??= 'passive';
  for (const rel of CANDIDATES) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      return require(path) as NativeKernels;
    } catch (e) {
      loadError = `${path}: ${(e as Error).message}`;
      return null;
    }
  }
  loadError = 'not built (npm run build compiles them; it needs a C compiler)';
  return null;
}

/** The native kernels, or null when they are not built or the ops path is forced. */
export function nativeKernels(): NativeKernels | null {
  if (currentMode() === 'ops') return null;
  if (loaded === undefined) loaded = load();
  return loaded;
}

/** Why the native kernels are not in use (null when they are). */
export function nativeKernelsStatus(): string | null {
  if (currentMode() === 'ops') return 'LOPT_KERNELS=ops';
  return nativeKernels() === null ? loadError : null;
}

/** The path chosen: 'native' (used when built and the backend allows) or 'ops'. */
export function kernelMode(): KernelMode {
  return currentMode();
}

/** Selects the path for the rest of the process (tests run both). Returns the previous mode. */
export function useKernels(next: KernelMode): KernelMode {
  const prev = currentMode();
  mode = parseMode(next);
  return prev;
}

/** Threads the native kernels use; results do not depend on it. */
export function kernelThreads(): number {
  return (threads ??= parseThreads(process.env['LOPT_THREADS']));
}

export function setKernelThreads(n: number): void {
  threads = parseThreads(String(n));
}

// Importing this module makes the addon the kernels of lopt's math (src/kernels/registry.ts).
registerKernelProvider({ kernels: nativeKernels, threads: kernelThreads });
