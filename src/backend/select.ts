// Chooses the tfjs compute backend: tensorflow (native, when the user installed tfjs-node) →
// wasm (SIMD, the default here) → cpu. See DESIGN.md "Compute backend".
import * as tf from '@tensorflow/tfjs-core';
import { kernelThreads, nativeKernelsStatus } from '../kernels/native.js';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle registers them all
// (globally), and every backend needs them for training.
import '@tensorflow/tfjs-layers';
import { installWasmFallbacks } from './wasmFallbacks.js';
import { isFastMatMulInstalled } from './wasmFastMatMul.js';
import { installWasmKernels } from './wasmKernels.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

const CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
const ALLOWED = `allowed: ${CHOICES.map((c) => `'${c}'`).join(', ')}`;
/** Optional native packages, tried in this order; not dependencies (their install downloads libtensorflow). */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export function parseBackendName(s: string): BackendName | 'auto' {
  const v = s.trim().toLowerCase();
  for (const c of CHOICES) if (c === v) return c;
  throw new Error(`lopt: unknown backend '${s}'; ${ALLOWED}`);
}

let current: BackendName | undefined;
let nativePackage: string | undefined;
const announced = new Set<BackendName>();

export async function initBackend(opts: { backend?: BackendName | 'auto'; log?: (line: string) => void } = {}): Promise<BackendName> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const requested = requestedBackend(opts.backend);
  // Same choice again (or 'auto' once something is chosen): nothing to do.
  if (current !== undefined && (requested === 'auto' || requested === current) && tf.getBackend() === current) {
    return current;
  }
  const chosen = requested === 'auto' ? await chooseAuto() : await useExplicit(requested);
  current = chosen;
  if (chosen === 'cpu') quietCpuBanner();
  if (chosen === 'wasm') installWasmKernels();
  if (!announced.has(chosen)) {
    announced.add(chosen);
    log(`lopt: backend ${describe(chosen)}; ${describeKernels(chosen)}`);
  }
  return chosen;
}

function requestedBackend(option: string | undefined): BackendName | 'auto' {
  if (option !== undefined) return parseBackendName(option);
  const env = process.env['LOPT_BACKEND'];
  if (env === undefined || env.trim() === '') return 'auto';
  try {
    return parseBackendName(env);
  } catch {
    throw new Error(`lopt: LOPT_BACKEND='${env}' is not a backend; ${ALLOWED}`);
  }
}

async function chooseAuto(): Promise<BackendName> {
  if ((await tryNative()) === null) return 'tensorflow';
  if (await tf.setBackend('wasm')) return 'wasm';
  if (await tf.setBackend('cpu')) return 'cpu';
  throw new Error('lopt: no tfjs backend could be initialised (tried tensorflow, wasm, cpu)');
}

async function useExplicit(name: BackendName): Promise<BackendName> {
  if (name === 'tensorflow') {
    const failure = await tryNative();
    if (failure !== null) {
      throw new Error(
        `lopt: backend 'tensorflow' was asked for but could not be loaded (${failure}). ` +
          `Install @tensorflow/tfjs-node (or -node-gpu) 4.22, or choose another backend; ${ALLOWED}`,
      );
    }
    return name;
  }
  if (!(await tf.setBackend(name))) {
    throw new Error(`lopt: backend '${name}' was asked for but failed to initialise (see the tfjs warning above); ${ALLOWED}`);
  }
  return name;
}

/** Loads a native tfjs package and switches to it; returns null on success, else why it failed. */
async function tryNative(): Promise<string | null> {
  const reasons: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      // A variable specifier: these packages are optional, so tsc must not need their types.
      const spec: string = pkg;
      await import(spec);
      if (await tf.setBackend('tensorflow')) {
        nativePackage = pkg;
        return null;
      }
      reasons.push(`${pkg}: loaded but its backend failed to initialise`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      reasons.push(`${pkg}: ${code === 'ERR_MODULE_NOT_FOUND' ? 'not installed' : (e as Error).message}`);
    }
  }
  return reasons.join('; ');
}

function describeKernels(name: BackendName): string {
  if (name === 'tensorflow') return 'learned optimizers and tasks on tfjs ops';
  const why = nativeKernelsStatus();
  return why === null ? `native kernels on (${kernelThreads()} thread${kernelThreads() === 1 ? '' : 's'})` : `native kernels off (${why}): tfjs-ops path`;
}

function describe(name: BackendName): string {
  if (name === 'tensorflow') return `tensorflow (${nativePackage ?? 'native'})`;
  if (name === 'cpu') return 'cpu (pure JS, slow: install @tensorflow/tfjs-node, or use wasm)';
  const simd = flag('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD';
  const threads = flag('WASM_HAS_MULTITHREAD_SUPPORT') ? 'threads' : 'single thread';
  const fallbacks = installWasmFallbacks();
  const parts = [`${simd}, ${threads}`, `XNNPACK fast matMul ${isFastMatMulInstalled() ? 'on' : 'off'}`, 'shared-buffer Identity', 'block-copy Tile'];
  if (fallbacks.length > 0) parts.push(`cpu fallbacks for ${fallbacks.join(', ')}`);
  return `wasm (${parts.join('; ')})`;
}

/** The wasm flags are async; after the backend's init they are cached and readable synchronously. */
function flag(name: string): boolean {
  try {
    return tf.env().getBool(name);
  } catch {
    return false;
  }
}

/** The cpu backend's first write prints an "install tfjs-node" banner; our start-up line says it already. */
function quietCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
}
