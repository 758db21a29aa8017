// Response log-probabilities under the causal transformer: the S(y) every preference loss reads.
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import { causalLogits, type TransformerConfig } from '../transformer.js';

/**
 * S[p, n] = Σ_j m[p, n, j] · log softmax(logits[p, n·T + j])[y[p, n, j]]: the summed
 * log-probability of the masked targets of each sequence. logits [P, N·T, V], y and m [P, N, T] → [P, N].
 */
export function maskedLogProbs(logits: tf.Tensor, y: tf.Tensor, mask: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const [P, N, T] = y.shape as [number, number, number];
    const V = logits.shape[2]!;
    const logp = tf.logSoftmax(logits);
    // int32 one-hot, then cast (wasm's OneHot ignores dtype 'float32'; see tasks/transformer.ts).
    const targets = tf.cast(tf.oneHot(tf.reshape(tf.cast(y, 'int32'), [P, N * T]) as tf.Tensor2D, V), 'float32');
    const picked = tf.sum(tf.mul(logp, targets), -1);
    return tf.sum(tf.mul(tf.reshape(picked, [P, N, T]), mask), -1) as tf.Tensor2D;
  });
}

/** S of N sequences per member: x, y, m [P, N, T] under params [P, ...] → [P, N]. */
export function responseLogProbs(model: TransformerConfig, vocab: number, params: Params, x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => maskedLogProbs(causalLogits(model, vocab, params, x), y, mask));
}
