// Tensors as host arrays for the native kernels, without copies where the backend allows: on wasm,
// views of the wasm heap (inputs read in place, outputs allocated there and written by the
// kernel); on cpu, the tensors' own arrays and fresh ones.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type HostArray = Float32Array | Int32Array;

/**
 * Allocates one float32 output per shape, then calls `fn` with host arrays of `inputs` (read only)
 * and of the outputs (to be written), and returns the outputs as tensors. `initial[i]`, when
 * given, is copied into output i first (a kernel that updates state in place).
 */
export function withHostArrays(
  inputs: tf.Tensor[],
  outputShapes: number[][],
  initial: (tf.Tensor | null)[],
  fn: (ins: HostArray[], outs: Float32Array[]) => void,
): tf.Tensor[] {
  if (tf.getBackend() === 'wasm') {
    const backend = tf.backend() as BackendWasm;
    const outs = outputShapes.map((shape) => backend.makeOutput(shape, 'float32'));
    // Views made after every allocation: an allocation may grow (and so detach) the heap.
    const inViews = inputs.map((t) => backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }) as HostArray);
    const outViews = outs.map((o) => backend.typedArrayFromHeap(o) as Float32Array);
    initial.forEach((t, i) => {
      if (t !== null) outViews[i]!.set(backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }) as Float32Array);
    });
    try {
      fn(inViews, outViews);
    } catch (e) {
      for (const o of outs) backend.disposeData(o.dataId);
      throw e;
    }
    return outs.map((o) => tf.engine().makeTensorFromTensorInfo(o));
  }
  const ins = inputs.map((t) => t.dataSync() as HostArray);
  const outs = outputShapes.map((shape, i) => {
    const init = initial[i];
    return init ? Float32Array.from(init.dataSync() as Float32Array) : new Float32Array(shape.reduce((a, b) => a * b, 1));
  });
  fn(ins, outs);
  return outs.map((data, i) => tf.tensor(data, outputShapes[i]!, 'float32'));
}
