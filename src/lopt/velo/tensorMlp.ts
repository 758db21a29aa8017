// VeLO's per-parameter MLP: each tensor gets its own weights, interpolated from K banks by the
// controls its LSTM row produced (HyperV2.opt_fn.update `interpolate_theta`, and `_ff_mod`).
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../tree/params.js';
import { VELO_GROUP_CHANNELS } from './config.js';

/** Every tensor's MLP weights [P, T, …]: w0 [P, T, 30, F] (the 14 input groups' rows stacked), w1 [P, T, F, F], w2 [P, T, F, 3]. */
export interface TensorMlps {
  w0: tf.Tensor4D;
  b0: tf.Tensor3D;
  w1: tf.Tensor4D;
  b1: tf.Tensor3D;
  w2: tf.Tensor4D;
  b2: tf.Tensor3D;
}

/** 100 · mean_k(controls[p, t, k] · bank[p, k, …]) for one bank stack [P, K, …] → [P, T, …]. */
function interpolate(controls: tf.Tensor3D, bank: tf.Tensor): tf.Tensor {
  const [P, T, K] = controls.shape;
  const inner = bank.shape.slice(2);
  const flat = tf.reshape(bank, [P, K, inner.reduce((a, b) => a * b, 1)]) as tf.Tensor3D;
  return tf.reshape(tf.mul(tf.matMul(controls, flat), 100 / K), [P, T, ...inner]);
}

/** The MLP weights of every tensor from the banks in theta (with a leading member axis). */
export function interpolateMlps(theta: Params, controls: tf.Tensor3D): TensorMlps {
  return tf.tidy(() => {
    const bank = (name: string) => theta[`ff_mod_stack/~/${name}`]!;
    const w0Banks = tf.concat(
      VELO_GROUP_CHANNELS.map((_, i) => bank(`w0__${i}`)),
      2,
    );
    return {
      w0: interpolate(controls, w0Banks) as tf.Tensor4D,
      b0: interpolate(controls, bank('b0')) as tf.Tensor3D,
      w1: interpolate(controls, bank('w1')) as tf.Tensor4D,
      b1: interpolate(controls, bank('b1')) as tf.Tensor3D,
      w2: interpolate(controls, bank('w2')) as tf.Tensor4D,
      b2: interpolate(controls, bank('b2')) as tf.Tensor3D,
    };
  });
}

/** Tensor t's slice [P, …] of a [P, T, …] weight. */
function pick<R extends tf.Rank>(w: tf.Tensor, t: number): tf.Tensor<R> {
  const begin = w.shape.map((_, i) => (i === 1 ? t : 0));
  const size = w.shape.map((d, i) => (i === 1 ? 1 : d));
  return tf.squeeze(tf.slice(w, begin, size), [1]) as tf.Tensor<R>;
}

/**
 * Tensor t's MLP on its normalized channels x [P, 30, N]: relu(w0ᵀx + b0) → relu(w1ᵀ· + b1) →
 * w2ᵀ· + b2; the direction and magnitude outputs [P, N]. Must run inside tf.tidy.
 */
export function applyTensorMlp(x: tf.Tensor3D, mlps: TensorMlps, t: number): { direction: tf.Tensor2D; magnitude: tf.Tensor2D } {
  const layer = (h: tf.Tensor3D, w: tf.Tensor4D, b: tf.Tensor3D): tf.Tensor3D =>
    tf.add(tf.matMul(pick<tf.Rank.R3>(w, t), h, true, false), tf.expandDims(pick<tf.Rank.R2>(b, t), 2));
  const h1 = tf.relu(layer(x, mlps.w0, mlps.b0));
  const h2 = tf.relu(layer(h1, mlps.w1, mlps.b1));
  const out = layer(h2, mlps.w2, mlps.b2);
  const [P, , N] = out.shape;
  return {
    direction: tf.reshape(tf.slice(out, [0, 0, 0], [P, 1, N]), [P, N]) as tf.Tensor2D,
    magnitude: tf.reshape(tf.slice(out, [0, 1, 0], [P, 1, N]), [P, N]) as tf.Tensor2D,
  };
}
