// The per-parameter MLP (C + G → H → H → 2, ReLU; G global features: time, fraction of training) applied to one tensor's features for every
// population member at once.
import * as tf from '@tensorflow/tfjs-core';
import { isFastMatMulInstalled } from '../backend/wasmFastMatMul.js';

/** MLP weights with a leading population axis: w0 [P, C+G, H], b0 [P, H], w1 [P, H, H], b1 [P, H], w2 [P, H, 2], b2 [P, 2]. */
export interface MlpWeights {
  w0: tf.Tensor3D;
  b0: tf.Tensor2D;
  w1: tf.Tensor3D;
  b1: tf.Tensor2D;
  w2: tf.Tensor3D;
  b2: tf.Tensor2D;
}

/** The parts of the first layer that are the same for every tensor at a step. */
export interface FirstLayer {
  /** Rows of w0 for the normalized channels [P, C, H]. */
  wChannels: tf.Tensor3D;
  /**
   * b0 + global·w0[C:] [P, H]: the global features (the 11 time features, and the fraction of
   * training where the architecture has it) are equal for every parameter, so their product is
   * one bias per step.
   */
  bias: tf.Tensor2D;
}

/** `global`: one row of global features per member ([P][G]). */
export function firstLayer(w: MlpWeights, global: readonly (readonly number[])[], channels: number): FirstLayer {
  const [P, , H] = w.w0.shape;
  const G = global[0]!.length;
  const wChannels = tf.slice(w.w0, [0, 0, 0], [P, channels, H]);
  const wTime = tf.slice(w.w0, [0, channels, 0], [P, G, H]);
  const t = tf.tensor3d(global.flat(), [global.length, G, 1]);
  const bias = tf.add(w.b0, tf.sum(tf.mul(wTime, t), 1)) as tf.Tensor2D;
  return { wChannels, bias };
}

/**
 * (direction, magnitude) [P, N] for raw channels [P, C, N] normalized by scale [P, C]. The
 * normalization is folded into the first layer's weights (x·s)·W = x·(s·W): no pass over the
 * [P, C, N] block, only a [P, C, H] product.
 */
export function mlpOutputs(raw: tf.Tensor3D, scale: tf.Tensor2D, w: MlpWeights, first: FirstLayer): { direction: tf.Tensor2D; magnitude: tf.Tensor2D } {
  const [P, C, N] = raw.shape;
  const H = w.w1.shape[1];
  const w0 = tf.mul(first.wChannels, tf.expandDims(scale, 2));
  if (P === 1) {
    // 2-D products: the wasm fast path (and every backend) handles these best; bias and ReLU fused.
    // The wasm fused kernel checks the rank its bias *data* was created with (a reshape keeps it),
    // so the small biases are copied into fresh rank-1 tensors.
    const vec = (t: tf.Tensor, n: number) => tf.add(tf.reshape(t, [n]), 0);
    const x = tf.reshape(raw, [C, N]);
    // With the fast path, transposeA costs one heap transpose (~4× cheaper than the Transpose
    // kernel). Without it, an explicit transpose: tfjs-wasm's own fused kernel computes wrong
    // values with transposeA and a bias (tfjs 4.22).
    const fast = isFastMatMulInstalled();
    const h1 = tf.fused.matMul({
      a: fast ? x : tf.transpose(x),
      b: tf.reshape(w0, [C, H]),
      transposeA: fast,
      bias: vec(first.bias, H),
      activation: 'relu',
    });
    const h2 = tf.fused.matMul({ a: h1, b: tf.reshape(w.w1, [H, H]), bias: vec(w.b1, H), activation: 'relu' });
    // Two [N, H]·[H, 1] products instead of one [N, 2] output split along its last axis (slow).
    const w2 = tf.reshape(w.w2, [H, 2]);
    const b2 = tf.reshape(w.b2, [2]);
    const column = (j: number) => tf.fused.matMul({ a: h2, b: tf.slice(w2, [0, j], [H, 1]), bias: tf.slice(b2, [j], [1]) });
    return { direction: tf.reshape(column(0), [1, N]) as tf.Tensor2D, magnitude: tf.reshape(column(1), [1, N]) as tf.Tensor2D };
  }
  return populationMlp(raw, w0 as tf.Tensor3D, w, first);
}

/**
 * The MLP over already-normalized features x [P, C, N] for every member at once: used for all of
 * a population's tensors concatenated along N, so each step runs 4 batched products instead of 4
 * per tensor (per-product overhead dominates at meta-training sizes).
 */
export function mlpOutputsNormalized(x: tf.Tensor3D, w: MlpWeights, first: FirstLayer): { direction: tf.Tensor2D; magnitude: tf.Tensor2D } {
  return populationMlp(x, first.wChannels, w, first);
}

function populationMlp(x: tf.Tensor3D, w0: tf.Tensor3D, w: MlpWeights, first: FirstLayer): { direction: tf.Tensor2D; magnitude: tf.Tensor2D } {
  const [P, , N] = x.shape;
  const H = w.w1.shape[1];
  const h1 = tf.relu(tf.add(tf.matMul(x, w0, true, false), tf.expandDims(first.bias, 1)));
  const h2 = tf.relu(tf.add(tf.matMul(h1, w.w1), tf.expandDims(w.b1, 1)));
  // One [P, N, H]·[P, H, 1] product per output rather than splitting a [P, N, 2] block along its
  // last axis (SplitV on wasm costs more than the product itself).
  const column = (j: number) =>
    tf.reshape(tf.add(tf.matMul(h2, tf.slice(w.w2, [0, 0, j], [P, H, 1])), tf.reshape(tf.slice(w.b2, [0, j], [P, 1]), [P, 1, 1])), [P, N]);
  return { direction: column(0) as tf.Tensor2D, magnitude: column(1) as tf.Tensor2D };
}

/** Theta names and shapes of the MLP inputs → H → H → 2. */
export function mlpThetaShapes(inputs: number, hidden: number): Record<string, number[]> {
  return {
    'mlp/w0': [inputs, hidden],
    'mlp/b0': [hidden],
    'mlp/w1': [hidden, hidden],
    'mlp/b1': [hidden],
    'mlp/w2': [hidden, 2],
    'mlp/b2': [2],
  };
}

/** The MLP weights out of a theta whose tensors carry a leading population axis. */
export function mlpWeightsOf(theta: Record<string, tf.Tensor>): MlpWeights {
  return {
    w0: theta['mlp/w0'] as tf.Tensor3D,
    b0: theta['mlp/b0'] as tf.Tensor2D,
    w1: theta['mlp/w1'] as tf.Tensor3D,
    b1: theta['mlp/b1'] as tf.Tensor2D,
    w2: theta['mlp/w2'] as tf.Tensor3D,
    b2: theta['mlp/b2'] as tf.Tensor2D,
  };
}
