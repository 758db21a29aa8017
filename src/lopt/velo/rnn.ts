// VeLO's per-tensor network: HyperV2._rnn_forward (hyper_v2.py) with haiku's LSTM
// (haiku/_src/recurrent.py), batched over population members [P, …] and tensors [T].
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../tree/params.js';

/** The LSTM state, one row per tensor [P, T, H]. */
export type LstmState = {
  hidden: tf.Tensor3D;
  cell: tf.Tensor3D;
};

/** x [P, T, I] @ w [P, I, O] + b [P, O] (hk.Linear per member). */
function linear(x: tf.Tensor3D, theta: Params, name: string): tf.Tensor3D {
  const w = theta[`rnn_params/${name}/w`] as tf.Tensor3D;
  const b = theta[`rnn_params/${name}/b`] as tf.Tensor2D;
  return tf.add(tf.matMul(x, w), tf.expandDims(b, 1));
}

/** theta's initial LSTM state tiled to T tensors [P, T, H]. */
export function initialLstmState(theta: Params, T: number): LstmState {
  return tf.tidy(() => ({
    hidden: tf.tile(theta['lstm_init_state/hidden']!, [1, T, 1]) as tf.Tensor3D,
    cell: tf.tile(theta['lstm_init_state/cell']!, [1, T, 1]) as tf.Tensor3D,
  }));
}

export interface RnnOutput {
  /** Interpolation weights of the MLP banks per tensor [P, T, K]. */
  controls: tf.Tensor3D;
  /** Each tensor's raw step multiplier [P, T]. */
  lrMult: tf.Tensor2D;
  state: LstmState;
}

/**
 * One step of the per-tensor network on inputs x [P, T, 30] (theta with a leading member axis):
 * mix = relu(linear_1(x)); x' = linear_2(x) + max over tensors of mix; haiku LSTM on x' (gates
 * i, g, f, o from one Linear over [x', h]; forget bias +1); controls and lr_mult heads on h.
 * The reference also computes relu(linear(x)) and discards it: skipped here, it changes nothing.
 */
export function rnnForward(theta: Params, x: tf.Tensor3D, state: LstmState): RnnOutput {
  return tf.tidy(() => {
    const mix = tf.relu(linear(x, theta, 'linear_1'));
    const pooled = tf.max(mix, 1, true);
    const input = tf.add(linear(x, theta, 'linear_2'), pooled) as tf.Tensor3D;
    const gated = linear(tf.concat([input, state.hidden], 2) as tf.Tensor3D, theta, 'rnn/~/linear');
    const [i, g, f, o] = tf.split(gated, 4, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
    const cell = tf.add(tf.mul(tf.sigmoid(tf.add(f, 1)), state.cell), tf.mul(tf.sigmoid(i), tf.tanh(g))) as tf.Tensor3D;
    const hidden = tf.mul(tf.sigmoid(o), tf.tanh(cell)) as tf.Tensor3D;
    const controls = linear(hidden, theta, 'rnn_to_controls');
    const lrMult = tf.squeeze(linear(hidden, theta, 'step_size'), [2]) as tf.Tensor2D;
    return { controls, lrMult, state: { hidden, cell } };
  });
}
