// The tfjs backend in a browser: wasm (SIMD; threads only on a cross-origin-isolated page) with
// lopt's wasm kernels, the pure-JS cpu, or WebGL / WebGPU when the page imported those backends.
// No environment variables, no native packages, no compiled kernels: the tfjs-ops paths run.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// tfjs-layers' bundle registers every gradient, which training needs on any backend.
import '@tensorflow/tfjs-layers';
import { installWasmKernels } from './wasmKernels.js';

export const BROWSER_BACKENDS = ['wasm', 'cpu', 'webgl', 'webgpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKENDS)[number];

export interface BrowserBackendOptions {
  backend?: BrowserBackendName;
  /**
   * Where the page serves tfjs-backend-wasm's .wasm files: a folder URL ending in '/', or a map from
   * each file name (tfjs-backend-wasm.wasm, tfjs-backend-wasm-simd.wasm,
   * tfjs-backend-wasm-threaded-simd.wasm) to its URL. Needed for wasm unless the files sit beside the script.
   */
  wasmPaths?: string | Record<string, string>;
}

/** Selects and initialises the backend; resolves to its name. */
export async function initBrowserBackend(o: BrowserBackendOptions = {}): Promise<BrowserBackendName> {
  const backend = o.backend ?? 'wasm';
  if (!BROWSER_BACKENDS.includes(backend)) throw new Error(`lopt: unknown backend '${String(backend)}'; allowed: ${BROWSER_BACKENDS.join(', ')}`);
  if (backend === 'webgl' || backend === 'webgpu') {
    if (tf.findBackendFactory(backend) === null) {
      throw new Error(`lopt: backend '${backend}' is not registered; import '@tensorflow/tfjs-backend-${backend}' in the page first`);
    }
  }
  if (backend === 'wasm' && o.wasmPaths !== undefined) setWasmPaths(o.wasmPaths as Parameters<typeof setWasmPaths>[0]);
  if (!(await tf.setBackend(backend))) throw new Error(`lopt: backend '${backend}' failed to initialise in this browser`);
  await tf.ready();
  if (backend === 'wasm') installWasmKernels();
  return backend;
}
