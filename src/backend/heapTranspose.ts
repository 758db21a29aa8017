// Batched 2-D float32 transpose straight on the wasm heap. The wasm Transpose kernel walks the
// output with a stride of one row, which for power-of-two row lengths hits the same cache sets
// over and over (measured ≈ 2 ns/element on [256,256] and [128,784]); 4×4 tiles written column
// by column run at ≈ 0.8 ns/element on every shape measured.
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** A new tensor holding x viewed as [batch, rows, cols], transposed to [batch, cols, rows]. */
export function heapTranspose(backend: BackendWasm, x: TensorInfo, batch: number, rows: number, cols: number): TensorInfo {
  const out = backend.makeOutput([batch, cols, rows], 'float32');
  // Views made after the allocation: it may have grown (and so detached) the heap.
  const src = backend.typedArrayFromHeap({ dataId: x.dataId, shape: [batch * rows * cols], dtype: 'float32' });
  const dst = backend.typedArrayFromHeap(out);
  const size = rows * cols;
  for (let b = 0; b < batch; b++) transpose2d(src as Float32Array, dst as Float32Array, b * size, rows, cols);
  return out;
}

function transpose2d(s: Float32Array, d: Float32Array, base: number, rows: number, cols: number): void {
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const s0 = base + i * cols;
    const s1 = s0 + cols;
    const s2 = s1 + cols;
    const s3 = s2 + cols;
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o0 = base + j * rows + i;
      const o1 = o0 + rows;
      const o2 = o1 + rows;
      const o3 = o2 + rows;
      d[o0] = s[s0 + j]!;
      d[o0 + 1] = s[s1 + j]!;
      d[o0 + 2] = s[s2 + j]!;
      d[o0 + 3] = s[s3 + j]!;
      d[o1] = s[s0 + j + 1]!;
      d[o1 + 1] = s[s1 + j + 1]!;
      d[o1 + 2] = s[s2 + j + 1]!;
      d[o1 + 3] = s[s3 + j + 1]!;
      d[o2] = s[s0 + j + 2]!;
      d[o2 + 1] = s[s1 + j + 2]!;
      d[o2 + 2] = s[s2 + j + 2]!;
      d[o2 + 3] = s[s3 + j + 2]!;
      d[o3] = s[s0 + j + 3]!;
      d[o3 + 1] = s[s1 + j + 3]!;
      d[o3 + 2] = s[s2 + j + 3]!;
      d[o3 + 3] = s[s3 + j + 3]!;
    }
    for (; j < cols; j++) {
      const o = base + j * rows + i;
      d[o] = s[s0 + j]!;
      d[o + 1] = s[s1 + j]!;
      d[o + 2] = s[s2 + j]!;
      d[o + 3] = s[s3 + j]!;
    }
  }
  for (; i < rows; i++) {
    const si = base + i * cols;
    for (let j = 0; j < cols; j++) d[base + j * rows + i] = s[si + j]!;
  }
}
