// The wasm Identity kernel copies its input. The engine runs Identity for every tensor a
// gradient saves (clone before keep), so each training step copies its weights and activations
// once more (~0.2 ms per MLP 784-256-256-10 step). tfjs tensors are immutable, so like the cpu
// backend we share the buffer and count a reference instead.
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { wasmKernelOverride } from './kernelOverride.js';

const override = wasmKernelOverride(tf.Identity, (stock) => shared(stock));

/** Idempotent; no-op unless wasm is the active backend. */
export const installSharedIdentity = (): void => override.install();
/** Restores the copying kernel (the benchmark's "stock" figure). */
export const uninstallSharedIdentity = (): void => override.uninstall();

function shared(stock: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x?: TensorInfo }).x;
    // Strings live outside the heap; the stock kernel handles them.
    if (x === undefined || x.dtype === 'string') return stock(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
