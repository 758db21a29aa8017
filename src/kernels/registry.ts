// The compiled kernels lopt's math may call, as an injected provider. In Node,
// src/kernels/native.ts registers the addon when it is imported (the package entry, the CLI, the
// worker pool and the tasks import it); in a browser nothing is registered and every caller takes
// its tfjs-ops path, which the tests hold equal to the kernels.

export interface NativeKernels {
  perParamStep(header: Float64Array, arrays: ArrayBufferView[]): void;
  mlpLossAndGrads(
    header: Int32Array,
    readoutMult: number,
    x: Float32Array,
    y: Int32Array,
    params: Float32Array[],
    grads: Float32Array[],
    loss: Float32Array,
  ): void;
  sgemm(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number, threads: number): void;
}

export interface KernelProvider {
  /** The kernels, or null when they are not built or switched off. */
  kernels(): NativeKernels | null;
  /** Threads the kernels use; results do not depend on it. */
  threads(): number;
}

let provider: KernelProvider | null = null;

/** Makes `p` the source of kernels for the rest of the process. */
export function registerKernelProvider(p: KernelProvider): void {
  provider = p;
}

/**
 * The kernels when lopt should use them now: registered, built, not switched off, and tfjs on a
 * synchronous CPU backend (wasm, cpu) whose tensors can be read without a stall. On GPU backends
 * (tensorflow, webgl, webgpu) the tfjs-ops path runs.
 */
export function cpuKernels(backend: string): NativeKernels | null {
  return provider !== null && (backend === 'wasm' || backend === 'cpu') ? provider.kernels() : null;
}

/** Threads the kernels use (1 when none are registered). */
export function kernelThreads(): number {
  return provider === null ? 1 : provider.threads();
}
