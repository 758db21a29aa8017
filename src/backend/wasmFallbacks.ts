// Kernels the wasm backend lacks, served by the cpu backend's implementation: without them
// conv training (Conv2DBackpropFilter, depthwise backprops) and gather/embedding gradients
// (UnsortedSegmentSum) throw on wasm. Inputs are copied off the wasm heap, the cpu kernel runs,
// and its outputs are written back as wasm tensors.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { DataType, KernelBackend, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

const WASM = 'wasm';

/**
 * Gradient kernels of conv2d, depthwiseConv2d (and their fused forms) and gather, plus Einsum.
 * The other cpu-only kernels (complex numbers, FFT, ragged, string, draw) need dtypes or
 * platforms wasm cannot hold, so a fallback would not help.
 */
export const WASM_FALLBACK_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
  'Einsum',
] as const;

const installed = new Set<string>();

/** Registers the fallbacks wasm does not already have; idempotent. Returns the kernels now served by cpu. */
export function installWasmFallbacks(): string[] {
  for (const name of WASM_FALLBACK_KERNELS) {
    if (tf.getKernel(name, WASM) !== undefined) continue;
    const cpuKernel = tf.getKernel(name, 'cpu');
    if (cpuKernel === undefined) continue;
    tf.registerKernel({ kernelName: name, backendName: WASM, kernelFunc: viaCpu(cpuKernel.kernelFunc) });
    installed.add(name);
  }
  return [...installed];
}

/** The cpu backend instance, created on first use without its "install tfjs-node" banner. */
function cpuBackend(): KernelBackend {
  const cpu = tf.findBackend('cpu');
  if (cpu === null) throw new Error('lopt: the cpu backend (needed for wasm fallback kernels) is not available');
  // The banner fires on the first write; the selection step already offers tfjs-node.
  (cpu as unknown as { firstUse?: boolean }).firstUse = false;
  return cpu;
}

function viaCpu(kernelFunc: KernelFunc): KernelFunc {
  return (args) => {
    const wasm = args.backend as BackendWasm;
    const cpu = cpuBackend();
    const owned = new Set<object>();
    try {
      const inputs: NamedTensorInfoMap = {};
      for (const [key, info] of Object.entries(args.inputs)) {
        if (info == null) continue;
        const dataId = cpu.write(wasm.readSync(info.dataId), info.shape, info.dtype);
        owned.add(dataId);
        inputs[key] = { dataId, shape: info.shape, dtype: info.dtype };
      }
      const result = kernelFunc({ inputs, backend: cpu, attrs: args.attrs });
      const outputs = Array.isArray(result) ? result : [result];
      const back = outputs.map((o: TensorInfo) => {
        owned.add(o.dataId);
        return wasm.makeOutput(o.shape, o.dtype, undefined, typed(cpu.readSync(o.dataId), o.dtype));
      });
      return Array.isArray(result) ? back : (back[0] as TensorInfo);
    } finally {
      // Force: a cpu kernel may hand back an input's dataId with its refCount raised.
      for (const id of owned) cpu.disposeData(id, true);
    }
  };
}

/** wasm copies raw bytes, so the values must already be in the dtype's array type. */
function typed(values: tf.backend_util.BackendValues, dtype: DataType): tf.backend_util.TypedArray {
  const want = dtype === 'int32' ? Int32Array : dtype === 'bool' ? Uint8Array : Float32Array;
  if (values instanceof want) return values;
  return want.from(values as ArrayLike<number>);
}
