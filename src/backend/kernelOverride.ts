import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';

const WASM = 'wasm';

/** Swaps one wasm kernel for a wrapper around it, reversibly (tests and benchmarks compare both). */
export interface KernelOverride {
  /** Idempotent; a no-op unless wasm is the active backend. */
  install(): void;
  /** Restores the stock kernel. */
  uninstall(): void;
  installed(): boolean;
}

/** `wrap` receives the stock kernel function, to delegate the cases it does not handle. */
export function wasmKernelOverride(kernelName: string, wrap: (stock: KernelFunc) => KernelFunc): KernelOverride {
  let original: KernelConfig | undefined;
  return {
    install() {
      if (original !== undefined || tf.getBackend() !== WASM) return;
      const stock = tf.getKernel(kernelName, WASM);
      if (stock === undefined) return;
      original = stock;
      tf.unregisterKernel(kernelName, WASM);
      const config: KernelConfig = { kernelName, backendName: WASM, kernelFunc: wrap(stock.kernelFunc) };
      // Keep setup/dispose: a re-initialised wasm backend must still set up the stock kernel's cwrap.
      if (stock.setupFunc) config.setupFunc = stock.setupFunc;
      if (stock.disposeFunc) config.disposeFunc = stock.disposeFunc;
      tf.registerKernel(config);
    },
    uninstall() {
      if (original === undefined) return;
      tf.unregisterKernel(kernelName, WASM);
      tf.registerKernel(original);
      original = undefined;
    },
    installed: () => original !== undefined,
  };
}
