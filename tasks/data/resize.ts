import * as tf from '@tensorflow/tfjs-core';

/** Images per resize call: bounds the float copy of the input to ~15 MB at 28×28. */
const CHUNK = 5000;

/**
 * Square grey images (bytes, [count, from, from]) → floats in [0, 1], [count, to·to], resized as
 * TF2's `tf.image.resize(..., 'bilinear')` does (half-pixel centers, no antialias) — the resize
 * learned_optimization applies. Runs in chunks so the whole set is never held as floats twice.
 * Needs a ready tfjs backend (wasm must have been awaited).
 */
export function resizeImages(pixels: Uint8Array, count: number, from: number, to: number): Float32Array {
  const inDim = from * from;
  const outDim = to * to;
  if (pixels.length !== count * inDim) {
    throw new Error(`resizeImages: ${pixels.length} bytes is not ${count} images of ${from}×${from}`);
  }
  const out = new Float32Array(count * outDim);
  if (count === 0) return out;
  const buf = new Float32Array(Math.min(CHUNK, count) * inDim);
  for (let start = 0; start < count; start += CHUNK) {
    const n = Math.min(CHUNK, count - start);
    const src = pixels.subarray(start * inDim, (start + n) * inDim);
    // Scale before resizing: bilinear is linear, and this keeps values in [0, 1] up to rounding.
    for (let i = 0; i < src.length; i++) buf[i] = src[i]! / 255;
    const resized = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(buf.subarray(0, n * inDim), [n, from, from, 1]), [to, to], false, true));
    const values = resized.dataSync();
    resized.dispose();
    const base = start * outDim;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      out[base + i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}
