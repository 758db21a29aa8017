// Routes every wasm matMul to XNNPACK. The wasm backend only calls XNNPACK for a
// 2-D untransposed product; transposed or batched ones fall into a naive loop
// ~10× slower, and every backward pass of a matMul is transposed. The wrapper
// makes transposes explicit (heapTranspose), folds a batch into rows when b is
// shared, and otherwise runs one 2-D product per batch slice.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapTranspose } from './heapTranspose.js';
import { wasmKernelOverride } from './kernelOverride.js';
import { planMatMul, type MatMulPlan } from './matMulPlan.js';

const stats = { fast: 0, delegated: 0 };

/** How many matMuls took the fast path vs the original kernel since start-up (tests, bench). */
export function fastMatMulStats(): Readonly<{ fast: number; delegated: number }> {
  return { ...stats };
}

const overrides = [tf.BatchMatMul, tf._FusedMatMul].map((name) => wasmKernelOverride(name, (stock) => wrap(name, stock)));

export function isFastMatMulInstalled(): boolean {
  return overrides.some((o) => o.installed());
}

/** Replaces the wasm BatchMatMul and _FusedMatMul kernels. Idempotent; no-op unless wasm is the active backend. */
export function installFastMatMul(): void {
  for (const o of overrides) o.install();
}

/** Restores the original kernels (tests and the benchmark compare both). */
export function uninstallFastMatMul(): void {
  for (const o of overrides) o.uninstall();
}

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

type Mul2d = (a: TensorInfo, b: TensorInfo) => TensorInfo;

function wrap(name: string, orig: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const { transposeA, transposeB } = args.attrs as unknown as MatMulAttrs;
    const plan = a && b && a.dtype === 'float32' && b.dtype === 'float32' ? planMatMul(a.shape, b.shape, transposeA, transposeB) : null;
    // The fused bias runs along C's columns, which a swapped product would turn into rows.
    if (plan?.mode === 'swap' && name === tf._FusedMatMul) plan.mode = 'fold';
    // The stock fused kernel is only right for 2-D untransposed products (elsewhere it drops the
    // bias): small transposed or batched fused products take the fast path too.
    if (
      plan?.mode === 'original' &&
      name === tf._FusedMatMul &&
      plan.m * plan.k * plan.n > 0 &&
      (plan.transposeA || plan.transposeB || plan.batchA > 1 || plan.batchB > 1)
    ) {
      plan.mode = plan.batchB === 1 ? 'fold' : 'slices';
    }
    // prelu weights are laid out against the full output: leave that case to the original too.
    if (plan === null || plan.mode === 'original' || (name === tf._FusedMatMul && preluActivationWeights != null)) {
      stats.delegated++;
      return orig(args);
    }
    stats.fast++;
    const attrs2d = { ...args.attrs, transposeA: false, transposeB: false };
    const mul2d: Mul2d =
      name === tf._FusedMatMul
        ? (x, y) => {
            // The fused kernel takes rank-3 operands; bias (rank 1) applies per column either way.
            const inputs: Record<string, TensorInfo> = { a: as3d(x), b: as3d(y) };
            if (bias) inputs['bias'] = bias;
            if (preluActivationWeights) inputs['preluActivationWeights'] = preluActivationWeights;
            return orig({ inputs, backend, attrs: attrs2d }) as TensorInfo;
          }
        : (x, y) => orig({ inputs: { a: x, b: y }, backend, attrs: attrs2d }) as TensorInfo;
    return fastProduct(backend, a as TensorInfo, b as TensorInfo, plan, mul2d);
  };
}

function fastProduct(backend: BackendWasm, a: TensorInfo, b: TensorInfo, plan: MatMulPlan, mul2d: Mul2d): TensorInfo {
  const { m, k, n, batchA, batchB } = plan;
  const temps: TensorInfo[] = [];
  // A transposed copy, freed when the product is done.
  const transposed = (x: TensorInfo, rows: number, cols: number, batch: number): TensorInfo => {
    const t = heapTranspose(backend, x, batch, rows, cols);
    temps.push(t);
    return t;
  };
  try {
    if (plan.mode === 'swap') {
      // Cᵀ = Bᵀ·Aᵀ: operands stored transposed are used as they lie.
      const bT = plan.transposeB ? view(b, [n, k]) : transposed(b, k, n, 1);
      const aT = plan.transposeA ? view(a, [k, m]) : transposed(a, m, k, 1);
      const cT = mul2d(view(bT, [n, k]), view(aT, [k, m]));
      temps.push(cT);
      return reshaped(backend, heapTranspose(backend, cT, 1, n, m), plan.outShape);
    }
    const a3 = plan.transposeA ? transposed(a, k, m, batchA) : view(a, [batchA, m, k]);
    const b3 = plan.transposeB ? transposed(b, n, k, batchB) : view(b, [batchB, k, n]);
    if (plan.mode === 'fold') {
      // b is shared by every batch of a: one [batch·m, k]·[k, n] product, same memory order.
      return reshaped(backend, mul2d(view(a3, [batchA * m, k]), view(b3, [k, n])), plan.outShape);
    }
    return perSlice(backend, a3, b3, plan, mul2d);
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

function perSlice(backend: BackendWasm, a3: TensorInfo, b3: TensorInfo, plan: MatMulPlan, mul2d: Mul2d): TensorInfo {
  const { m, k, n, batchA, indexA, indexB } = plan;
  const out = backend.makeOutput(plan.outShape, 'float32');
  try {
    for (let o = 0; o < indexA.length; o++) {
      const sa = batchA === 1 ? view(a3, [m, k]) : copySlice(backend, a3, indexA[o]!, [m, k]);
      // Always a fresh b: XNNPACK caches its packed weights by b's tensor id.
      const sb = copySlice(backend, b3, indexB[o]!, [k, n]);
      const r = mul2d(sa, sb);
      // Heap views are re-made after each allocation: the wasm memory may have grown.
      heapF32(backend, out).set(heapF32(backend, r).subarray(0, m * n), o * m * n);
      backend.disposeData(r.dataId);
      backend.disposeData(sb.dataId);
      if (sa.dataId !== a3.dataId) backend.disposeData(sa.dataId);
    }
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  }
  return out;
}

function copySlice(backend: BackendWasm, src: TensorInfo, index: number, shape: number[]): TensorInfo {
  const size = shape.reduce((p, d) => p * d, 1);
  const dst = backend.makeOutput(shape, 'float32');
  heapF32(backend, dst).set(heapF32(backend, src).subarray(index * size, (index + 1) * size));
  return dst;
}

/** The result under its final shape; the backend's record follows (the fused kernel reads a bias's rank from it). */
function reshaped(backend: BackendWasm, r: TensorInfo, shape: number[]): TensorInfo {
  const record = backend.dataIdMap.get(r.dataId);
  if (record) record.shape = shape;
  return view(r, shape);
}

function heapF32(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

function as3d(t: TensorInfo): TensorInfo {
  return t.shape.length === 3 ? t : view(t, [1, ...t.shape]);
}
