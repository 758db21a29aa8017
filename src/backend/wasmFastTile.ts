// wasm's Tile kernel (behind tf.tile and tf.broadcastTo) walks the output element by element
// with index arithmetic: ~40 ns/element, ~100× slower than its broadcasting binary ops (35 ms to
// spread a [784,1] column over [784,1024]). This replacement copies contiguous blocks on the heap
// and replicates them by doubling copyWithin calls.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { wasmKernelOverride } from './kernelOverride.js';

const override = wasmKernelOverride(tf.Tile, (stock) => fastTile(stock));

/** Idempotent; no-op unless wasm is the active backend. */
export const installFastTile = (): void => override.install();
/** Restores the stock kernel (tests compare both). */
export const uninstallFastTile = (): void => override.uninstall();

type Heap = Float32Array | Int32Array | Uint8Array;

function fastTile(stock: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x?: TensorInfo }).x;
    const reps = (args.attrs as unknown as { reps: number[] }).reps;
    if (x === undefined || x.dtype === 'string' || x.dtype === 'complex64' || reps.length !== x.shape.length) {
      return stock(args);
    }
    const backend = args.backend as BackendWasm;
    const outShape = x.shape.map((d, i) => d * reps[i]!);
    const out = backend.makeOutput(outShape, x.dtype);
    // Views made after the allocation, which may have grown the heap.
    const src = backend.typedArrayFromHeap(x) as Heap;
    const dst = backend.typedArrayFromHeap(out) as Heap;
    if (dst.length > 0) tileInto(src, x.shape, reps, outShape, dst);
    return out;
  };
}

/** Writes x (shape `shape`) tiled `reps` times per dim into dst (shape outShape), row-major. */
export function tileInto(src: Heap, shape: readonly number[], reps: readonly number[], outShape: readonly number[], dst: Heap): void {
  const r = shape.length;
  if (r === 0) {
    dst[0] = src[0]!;
    return;
  }
  const srcStride = new Array<number>(r).fill(1);
  const dstStride = new Array<number>(r).fill(1);
  for (let d = r - 2; d >= 0; d--) {
    srcStride[d] = srcStride[d + 1]! * shape[d + 1]!;
    dstStride[d] = dstStride[d + 1]! * outShape[d + 1]!;
  }
  const fill = (d: number, so: number, doff: number): void => {
    if (d === r - 1) {
      const n = shape[d]!;
      if (n === 1) {
        dst.fill(src[so]!, doff, doff + reps[d]!);
        return;
      }
      dst.set(src.subarray(so, so + n), doff);
      replicate(dst, doff, n, reps[d]!);
      return;
    }
    for (let i = 0; i < shape[d]!; i++) fill(d + 1, so + i * srcStride[d]!, doff + i * dstStride[d]!);
    replicate(dst, doff, shape[d]! * dstStride[d]!, reps[d]!);
  };
  fill(0, 0, 0);
}

/** dst[off, off + block) repeated `times` times in place, doubling the copied span each call. */
function replicate(dst: Heap, off: number, block: number, times: number): void {
  const total = block * times;
  let written = block;
  while (written < total) {
    const len = Math.min(written, total - written);
    dst.copyWithin(off + written, off, off + len);
    written += len;
  }
}
