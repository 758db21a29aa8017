// MKOR's statistic vectors from a layer's per-row inputs and output gradients (authors' code,
// Mohammad-Mozaffari/mkor @3a0e3bb: mkor.py 123–158 and 289, utils/factors.py 73–81 and 116–119):
//   ā = mean over rows of clip([x, 1], ±100)       (the 1 only for a layer with a bias)
//   ḡ = mean over rows of clip(N·dy, ±100)         (N rows; N·dy is a row's own gradient)
// The clip is elementwise per row, before the mean. No gradient accumulation, no loss scaling.
import * as tf from '@tensorflow/tfjs-core';

/** The authors' clipping_value. */
export const MKOR_STATISTIC_CLIP = 100;

/** clip(x, ±100) that keeps NaN as NaN (torch.clamp does; wasm's clipByValue turns it into the lower bound). */
function clip(x: tf.Tensor): tf.Tensor {
  return tf.where(tf.isNaN(x), x, tf.clipByValue(x, -MKOR_STATISTIC_CLIP, MKOR_STATISTIC_CLIP));
}

/** ā [P, fanIn (+1)] from inputs [P, N, fanIn]: the clipped row mean, with a trailing 1 when `withBias`. */
export function inputVector(inputs: tf.Tensor3D, withBias: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const mean = tf.mean(clip(inputs), 1) as tf.Tensor2D;
    return withBias ? tf.concat([mean, tf.ones([inputs.shape[0], 1])], 1) : mean;
  });
}

/** ḡ [P, fanOut] from output gradients [P, N, fanOut]: the row mean of clip(N·dy). */
export function outputGradVector(outputGrads: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const N = outputGrads.shape[1];
    return tf.mean(clip(tf.mul(outputGrads, N)), 1) as tf.Tensor2D;
  });
}
