// Decides how the wasm fast matMul computes a product (pure shape logic, no tensors).
import * as tf from '@tensorflow/tfjs-core';

export interface MatMulPlan {
  /**
   * 'original': the stock kernel is already fast (2-D untransposed) or the product is too small to gain;
   * 'fold': one 2-D product, a's batches stacked as rows (b shared);
   * 'swap': a 2-D product computed as Cᵀ = Bᵀ·Aᵀ then transposed, when that moves less memory;
   * 'slices': one 2-D product per output batch.
   */
  mode: 'original' | 'fold' | 'swap' | 'slices';
  m: number;
  k: number;
  n: number;
  batchA: number;
  batchB: number;
  transposeA: boolean;
  transposeB: boolean;
  outShape: number[];
  /** For each output batch index, the batch of a and of b it reads (true broadcasting). */
  indexA: Int32Array;
  indexB: Int32Array;
}

/**
 * Below this many multiply-adds per 2-D product the naive loop costs less than the extra
 * kernel calls, copies and transposes (measured on wasm SIMD, Node 20: break-even between
 * 16³ and 20³; at 32³ the fast path is already 2.4–4.9× faster).
 */
export const SMALL_PRODUCT_MACS = 6000;

/**
 * Per-element costs (ns) measured on wasm SIMD, Node 20: heapTranspose ≈ 0.8, XNNPACK packing its
 * right operand (again for every new tensor id) ≈ 3.4. They decide between C = A·B and Cᵀ = Bᵀ·Aᵀ.
 */
const TRANSPOSE_NS = 0.8;
const PACK_NS = 3.4;

const size = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** null when the shapes are invalid for matMul: the caller lets the original kernel report it. */
export function planMatMul(aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean): MatMulPlan | null {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) return null;
  const at = (s: readonly number[], i: number): number => s[i] ?? 0;
  const m = transposeA ? at(aShape, ra - 1) : at(aShape, ra - 2);
  const ka = transposeA ? at(aShape, ra - 2) : at(aShape, ra - 1);
  const kb = transposeB ? at(bShape, rb - 1) : at(bShape, rb - 2);
  const n = transposeB ? at(bShape, rb - 2) : at(bShape, rb - 1);
  if (ka !== kb) return null;
  const k = ka;
  const batchShapeA = aShape.slice(0, -2);
  const batchShapeB = bShape.slice(0, -2);
  let outBatch: number[];
  try {
    outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchShapeA, batchShapeB);
  } catch {
    return null;
  }
  const batchA = size(batchShapeA);
  const batchB = size(batchShapeB);
  const { indexA, indexB, matchesModulo } = broadcastIndices(batchShapeA, batchShapeB, outBatch);
  const plan: MatMulPlan = {
    mode: 'slices',
    m,
    k,
    n,
    batchA,
    batchB,
    transposeA,
    transposeB,
    outShape: [...outBatch, m, n],
    indexA,
    indexB,
  };
  if (m * n * k === 0) plan.mode = 'original';
  else if (batchB === 1) {
    plan.mode = 'fold';
    // Already XNNPACK's case, or too small for a transpose to pay off.
    if (batchA === 1 && !transposeA && !transposeB) plan.mode = 'original';
    else if (batchA * m * k * n < SMALL_PRODUCT_MACS && matchesModulo) plan.mode = 'original';
    else if (batchA === 1 && swappedIsCheaper(m, k, n, transposeA, transposeB)) plan.mode = 'swap';
  } else if (m * k * n < SMALL_PRODUCT_MACS && matchesModulo) {
    plan.mode = 'original';
  }
  return plan;
}

/** C = A·B packs B (k·n) after transposing what is stored transposed; Cᵀ = Bᵀ·Aᵀ packs A (k·m) and transposes C too. */
function swappedIsCheaper(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): boolean {
  const direct = TRANSPOSE_NS * ((transposeA ? m * k : 0) + (transposeB ? k * n : 0)) + PACK_NS * k * n;
  const swapped = TRANSPOSE_NS * ((transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n) + PACK_NS * k * m;
  return swapped < direct;
}

/**
 * Per output batch, which batch of a and b it reads. tfjs kernels index batches modulo their
 * flat size, which equals broadcasting only when one batch shape is a suffix of the other;
 * `matchesModulo` is false for the other patterns (e.g. [2,1]·[1,3]), where the stock kernels
 * give wrong results and this path is used whatever the size.
 */
function broadcastIndices(
  shapeA: readonly number[],
  shapeB: readonly number[],
  outBatch: readonly number[],
): { indexA: Int32Array; indexB: Int32Array; matchesModulo: boolean } {
  const total = size(outBatch);
  const indexA = new Int32Array(total);
  const indexB = new Int32Array(total);
  const sizeA = size(shapeA);
  const sizeB = size(shapeB);
  let matchesModulo = true;
  for (let o = 0; o < total; o++) {
    indexA[o] = flatIndex(o, outBatch, shapeA);
    indexB[o] = flatIndex(o, outBatch, shapeB);
    if (indexA[o] !== o % sizeA || indexB[o] !== o % sizeB) matchesModulo = false;
  }
  return { indexA, indexB, matchesModulo };
}

/** Index into `shape` (right-aligned, size-1 dims broadcast) of flat output batch index `o`. */
function flatIndex(o: number, outBatch: readonly number[], shape: readonly number[]): number {
  let rest = o;
  let index = 0;
  let stride = 1;
  for (let i = 1; i <= outBatch.length; i++) {
    const outDim = outBatch[outBatch.length - i] ?? 1;
    const coord = rest % outDim;
    rest = (rest - coord) / outDim;
    if (i <= shape.length) {
      const dim = shape[shape.length - i] ?? 1;
      if (dim !== 1) index += coord * stride;
      stride *= dim;
    }
  }
  return index;
}
