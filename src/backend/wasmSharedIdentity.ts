// The wasm Identity kernel copies its input. The engine runs Identity for every tensor a
// gradient saves (clone before keep), so each training step copies its weights and activations
// once more (~0.2 ms per MLP 784-256-256-10 step). tfjs tensors are immutable, so like the cpu
// backend we share the buffer and count a reference instead.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

const WASM = 'wasm';
let original: KernelConfig | undefined;

/** Idempotent; no-op unless wasm is the active backend. */
export function installSharedIdentity(): void {
  if (original !== undefined || tf.getBackend() !== WASM) return;
  const stock = tf.getKernel(tf.Identity, WASM);
  if (stock === undefined) return;
  original = stock;
  tf.unregisterKernel(tf.Identity, WASM);
  const config: KernelConfig = { kernelName: tf.Identity, backendName: WASM, kernelFunc: shared(stock.kernelFunc) };
  if (stock.setupFunc) config.setupFunc = stock.setupFunc;
  tf.registerKernel(config);
}

/** Restores the copying kernel (the benchmark's "stock" figure). */
export function uninstallSharedIdentity(): void {
  if (original === undefined) return;
  tf.unregisterKernel(tf.Identity, WASM);
  tf.registerKernel(original);
  original = undefined;
}

function shared(stock: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x?: TensorInfo }).x;
    // Strings live outside the heap; the stock kernel handles them.
    if (x === undefined || x.dtype === 'string') return stock(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
