// What VeLO's per-tensor LSTM reads about one tensor: HyperV2.lstm_features_for_tensor
// (hyper_v2.py), for every population member at once.
import * as tf from '@tensorflow/tfjs-core';
import { FRACTION_POINTS } from '../features.js';

/** Entries of the rank one-hot: tensors with ≥ 5 dims larger than 1 get all zeros (hk.one_hot). */
const RANKS = 5;

/** tanh(10·(f − c)) for HyperV2's 9 centres c, f = iteration / numSteps (its "fraction_left"). */
export function fractionTrainedFeatures(iteration: number, numSteps: number): number[] {
  const f = iteration / numSteps;
  return FRACTION_POINTS.map((c) => Math.tanh((f - c) * 10));
}

/** clip(log(1e-8 + |10·v|), −5, 5) / 2: HyperV2's `_clip_log_abs(v, scale=10.)`. */
function clipLogAbs(v: tf.Tensor): tf.Tensor {
  return tf.mul(tf.clipByValue(tf.log(tf.add(tf.abs(tf.mul(v, 10)), 1e-8)), -5, 5), 0.5);
}

/** The rank one-hot of a parameter shape: dims larger than 1 counted (a scalar or [1, n] is low rank). */
export function rankOneHot(shape: readonly number[]): number[] {
  const rank = shape.filter((d) => d > 1).length;
  return Array.from({ length: RANKS }, (_, i) => (i === rank ? 1 : 0));
}

/**
 * The 30 LSTM inputs [P, 30] of one tensor, from its parameters p [P, 1, N], its old momenta
 * m [P, 3, N] and old second moment rms [P, 1, N] (before this step's gradient), and the features
 * every tensor shares `shared` [P, 18] (fraction trained 9, loss 9). Concatenated in the sorted key
 * order of the reference: fraction_left, loss_features, mean_rms, rank, var_m, var_rms.
 * The reference centres var_rms on the momenta's mean (`rms - mean_m`): kept, so var_rms has 3.
 */
export function lstmInputs(p: tf.Tensor3D, m: tf.Tensor3D, rms: tf.Tensor3D, shape: readonly number[], shared: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const P = p.shape[0];
    const normMult = tf.reshape(tf.rsqrt(tf.maximum(tf.mean(tf.square(p), 2), 1e-9)), [P, 1, 1]);
    const mn = tf.mul(m, normMult);
    const rmsn = tf.mul(rms, normMult);
    const meanM = tf.mean(mn, 2, true);
    const varM = tf.mean(tf.square(tf.sub(mn, meanM)), 2);
    const meanRms = tf.mean(rmsn, 2);
    const varRms = tf.mean(tf.square(tf.sub(rmsn, meanM)), 2);
    const rank = tf.tile(tf.tensor2d([rankOneHot(shape)]), [P, 1]);
    return tf.concat([shared, clipLogAbs(meanRms), rank, clipLogAbs(varM), clipLogAbs(varRms)], 1) as tf.Tensor2D;
  });
}
