// NEZHA's functional relative positional encoding (Wei et al. 2019, "NEZHA: Neural Contextualized
// Representation for Chinese Language Understanding", §3.2): fixed sinusoids of the clipped
// distance j − i enter every attention logit and every mixed value, in place of BERT's learned
// absolute positions. Population-batched like tasks/transformer.ts: the relative terms are batched
// matMuls with the query position as the batch axis.
//
// Pinned to the official code, huawei-noah/Pretrained-Language-Model @ 0598f02d7fc4eaa7b4cbc1e9d7ab18bc875c24f9,
// NEZHA-TensorFlow/modeling.py:
//  - _generate_relative_positions_matrix, lines 696–710: the full [L, L] distance matrix j − i,
//    clipped to ±K and shifted by K;
//  - _generate_relative_positions_embeddings, lines 713–776 (the live body; 777–792 are a dead
//    string holding a learned-table variant): table = np.zeros([2K + 1, d_z]) filled for
//    k < d_z // 2 with table[p][2k] = sin(p / 10000^(2k/d_z)), table[p][2k+1] = cos(…), so an odd
//    d_z leaves the last column 0; a_ij = table[p_ij];
//  - attention_layer, lines 941–962: K = 64 hard-coded, scores (q·k + q·a_ij) then × 1/√d_z;
//    lines 996–1013: context + Σ_j α_ij a_ij, from the same table as the keys.
// attention_layer calls it with cache=False. Its cache=True branch (line 704) builds only the
// [1, L] row of distances −(L−1)..0, one query at the last position (step-by-step decoding), which
// is not full bidirectional attention, so this follows cache=False. NEZHA-PyTorch/modeling_nezha.py
// (lines 301–322, 366–398; max_relative_position 64 in its config, line 87) builds the same table
// for length 512 and slices it [:T, :T], the same a_ij.
import * as tf from '@tensorflow/tfjs-core';
import { mergeHeads, projectHeads, type AttentionWeights } from '../transformer.js';

/** NEZHA's max_relative_position K: distances beyond ±K share the table row of ±K. */
export const NEZHA_MAX_RELATIVE_POSITION = 64;

/**
 * NEZHA's sinusoid table, [2K + 1, d_z] row-major in float64: row p (the shifted distance,
 * 0..2K) holds table[p][2k] = sin(p / 10000^(2k/d_z)) and table[p][2k+1] = cos(p / 10000^(2k/d_z))
 * for k < ⌊d_z/2⌋, interleaved; for odd d_z the last column is 0, as in the reference, whose loop
 * fills np.zeros([2K + 1, d_z]) up to 2·⌊d_z/2⌋ only.
 */
export function nezhaTable(maxRelative: number, dz: number): Float64Array {
  const rows = 2 * maxRelative + 1;
  const table = new Float64Array(rows * dz);
  for (let p = 0; p < rows; p++) {
    for (let k = 0; k < Math.floor(dz / 2); k++) {
      const angle = p / Math.pow(10000, (2 * k) / dz);
      table[p * dz + 2 * k] = Math.sin(angle);
      table[p * dz + 2 * k + 1] = Math.cos(angle);
    }
  }
  return table;
}

/**
 * The table's rows for the distances a window of T positions holds, [2T − 1, d_z] row-major: row
 * c is table[clip(c − (T − 1), −K, K) + K], the embedding of distance j − i = c − (T − 1). So
 * a_ij = row (j − i + T − 1), and the relative terms become products with these 2T − 1 rows.
 */
export function relativeDistanceRows(T: number, dz: number, maxRelative = NEZHA_MAX_RELATIVE_POSITION): Float32Array {
  const table = nezhaTable(maxRelative, dz);
  const out = new Float32Array((2 * T - 1) * dz);
  for (let c = 0; c < 2 * T - 1; c++) {
    const p = Math.min(maxRelative, Math.max(-maxRelative, c - (T - 1))) + maxRelative;
    out.set(table.subarray(p * dz, (p + 1) * dz), c * dz);
  }
  return out;
}

/**
 * By distance → by key: R[.., i, j] = D[.., i, j − i + T − 1] for D [.., T, 2T − 1]. Row-major, that
 * element sits at i(2T − 2) + j + (T − 1) of D flattened, so rows of stride 2T − 2 read from offset
 * T − 1 hold R: a slice and reshapes, no gather (Music Transformer's skewing, Huang et al. 2018).
 */
function byKey(D: tf.Tensor, T: number): tf.Tensor {
  const lead = D.shape.slice(0, -2);
  if (T === 1) return D;
  const flat = tf.reshape(D, [-1, T * (2 * T - 1)]);
  const rows = tf.reshape(tf.slice(flat, [0, T - 1], [-1, T * (2 * T - 2)]), [-1, T, 2 * T - 2]);
  return tf.reshape(tf.slice(rows, [0, 0, 0], [-1, T, T]), [...lead, T, T]);
}

/**
 * By key → by distance, the inverse placement: A [.., T, T] to D [.., T, 2T − 1] with
 * D[.., i, j − i + T − 1] = A[.., i, j] and zeros elsewhere (pad each row to 2T − 2, flatten, shift
 * by T − 1, reshape).
 */
function byDistance(A: tf.Tensor, T: number): tf.Tensor {
  const lead = A.shape.slice(0, -2);
  if (T === 1) return A;
  const rows = tf.pad(tf.reshape(A, [-1, T, T]), [
    [0, 0],
    [0, 0],
    [0, T - 2],
  ]);
  const flat = tf.pad(tf.reshape(rows, [-1, T * (2 * T - 2)]), [
    [0, 0],
    [T - 1, 1],
  ]);
  return tf.reshape(flat, [...lead, T, 2 * T - 1]);
}

/**
 * Bidirectional (unmasked) multi-head self-attention of x [P, B, T, d] (already normalized) with
 * [P, d, d] projections, per head:
 *   e_ij = q_i·(k_j + a_ij)·s,  α_i = softmax_j(e_ij),  z_i = Σ_j α_ij (v_j + a_ij)
 * with `distances` = relativeDistanceRows(T, d_z) as a [2T − 1, d_z] tensor (NEZHA; s = `logitScale`,
 * the paper's 1/√d_z under SP), or e_ij = q_i·k_j·s and z_i = Σ_j α_ij v_j when it is null (BERT,
 * positions in the input). Since a_ij depends on j − i only, q_i·a_ij is (q·Dᵀ)[i, j − i + T − 1] and
 * Σ_j α_ij a_ij = Σ_c α_i,(c − T + 1 + i) D_c: one ordinary matMul each, moved between key and
 * distance order by the skews above. Returns [P, B, T, d].
 */
export function encoderSelfAttention(x: tf.Tensor, w: AttentionWeights, heads: number, logitScale: number, distances: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    const [P, B, T, d] = x.shape as [number, number, number, number];
    const { q, k, v } = projectHeads(x, w, heads);
    if (distances === null) return mergeHeads(tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), logitScale)), v), w);
    const dz = d / heads;
    if (distances.shape.join() !== [2 * T - 1, dz].join()) {
      throw new Error(`encoderSelfAttention: relative distance rows are [${distances.shape}], need [${2 * T - 1}, ${dz}]`);
    }
    const N = P * B * heads;
    const flatQ = tf.reshape(q, [N * T, dz]);
    const keyTerm = byKey(tf.reshape(tf.matMul(flatQ, distances, false, true), [N, T, 2 * T - 1]), T);
    const logits = tf.add(tf.matMul(q, k, false, true), tf.reshape(keyTerm, [P, B, heads, T, T]));
    const probs = tf.softmax(tf.mul(logits, logitScale));
    const valueTerm = tf.matMul(tf.reshape(byDistance(probs, T), [N * T, 2 * T - 1]), distances);
    return mergeHeads(tf.add(tf.matMul(probs, v), tf.reshape(valueTerm, [P, B, heads, T, dz])), w);
  });
}
