// MKOR's Kronecker factors, kept as their inverses and refreshed by rank-1 Sherman–Morrison updates
// (Mozaffari et al. 2023, "MKOR: Momentum-Enabled Kronecker-Factor-Based Optimizer Using Rank-1
// Updates"). Pinned to the authors' code, Mohammad-Mozaffari/mkor @3a0e3bb, mkor/mkor.py and
// mkor/utils/factors.py, not the paper's printed equations (which have sign and scale typos):
//   M = 0.95·F + 0.05·I                         (hard-coded blend, mkor.py 345; stat_decay is unused)
//   F ← M − (M v)(M v)ᵀ / (1 + vᵀ M v) = (M⁻¹ + v vᵀ)⁻¹   (factors.py 227–233)
// with v the batch mean of the augmented layer inputs (left factor A⁻¹, size in + 1) or of N·dy
// (right factor G⁻¹, size out). A factor whose largest |entry| exceeds 2 after an update resets
// both factors of its layer to I at the next update step, whose vectors are then discarded
// (mkor.py 330–374; the code's blend-toward-I branch is unreachable, so a reset is always to I).
// Every tensor carries the population axis: factors [P, d, d], vectors [P, d], flags [P] (1 = reset).
import * as tf from '@tensorflow/tfjs-core';

/** P identity matrices [P, d, d] (tf.eye with a batch shape, typed as what it returns). */
function identities(P: number, d: number): tf.Tensor3D {
  return tf.eye(d, d, [P]) as unknown as tf.Tensor3D;
}

/** The blend toward I before each rank-1 update (the authors' hard-coded 0.95). */
export const MKOR_BLEND = 0.95;
/** A factor with an entry beyond this in absolute value is reset to I at the next update. */
export const MKOR_RESET_THRESHOLD = 2;

/**
 * One decayed rank-1 Sherman–Morrison update of inverse factors F [P, d, d] with vectors v [P, d]:
 * M = blend·F + (1 − blend)·I, then M − (Mv)(Mv)ᵀ / (1 + vᵀMv), which is (M⁻¹ + v vᵀ)⁻¹.
 */
export function shermanMorrisonDecayed(F: tf.Tensor3D, v: tf.Tensor2D, blend = MKOR_BLEND): tf.Tensor3D {
  return tf.tidy(() => {
    const [P, d] = [F.shape[0], F.shape[1]];
    const M = tf.add(tf.mul(F, blend), tf.mul(identities(P, d), 1 - blend)) as tf.Tensor3D;
    const col = tf.reshape(v, [P, d, 1]);
    const u = tf.matMul(M, col); // [P, d, 1]
    const denom = tf.add(1, tf.matMul(col, u, true, false)); // [P, 1, 1]
    return tf.sub(M, tf.div(tf.matMul(u, u, false, true), denom)) as tf.Tensor3D;
  });
}

/** Per member, 1 where some |entry| of F [P, d, d] exceeds the threshold (NaN compares false, as in the reference). */
function tripped(F: tf.Tensor3D): tf.Tensor1D {
  return tf.tidy(() => tf.cast(tf.greater(tf.max(tf.abs(F), [1, 2]), MKOR_RESET_THRESHOLD), 'float32') as tf.Tensor1D);
}

/** Per member: `reset` [P] (1/0) picks I, else `updated`. */
function resetOr(reset: tf.Tensor1D, updated: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [P, d] = [updated.shape[0], updated.shape[1]];
    return tf.where(tf.cast(tf.reshape(reset, [P, 1, 1]), 'bool'), identities(P, d), updated);
  });
}

export interface LayerFactors {
  /** A⁻¹ [P, in + 1, in + 1] (in × in for a layer without bias). */
  aInv: tf.Tensor3D;
  /** G⁻¹ [P, out, out]. */
  gInv: tf.Tensor3D;
  /** [P] 1 where A⁻¹ is reset to I at the next update step. */
  resetA: tf.Tensor1D;
  /** [P] 1 where G⁻¹ is reset to I at the next update step. */
  resetG: tf.Tensor1D;
}

/** A layer's factors before the first update: identities, both flagged for reset (the first update only clears the flags). */
export function initialFactors(P: number, aSize: number, gSize: number): LayerFactors {
  return {
    aInv: identities(P, aSize),
    gInv: identities(P, gSize),
    resetA: tf.ones([P]),
    resetG: tf.ones([P]),
  };
}

/**
 * One update step of a layer's factors, in the reference's order (A before G):
 *   A: if resetA → I and clear resetA; else SM-update, and a trip sets both flags;
 *   G: if resetG → I and clear resetG; else SM-update, and a trip sets both flags.
 * `a` [P, in + 1] and `g` [P, out] are the step's statistic vectors. Returns new tensors.
 */
export function updateFactors(f: LayerFactors, a: tf.Tensor2D, g: tf.Tensor2D): LayerFactors {
  return tf.tidy(() => {
    const aInv = resetOr(f.resetA, shermanMorrisonDecayed(f.aInv, a));
    const tripA = tf.mul(tf.sub(1, f.resetA), tripped(aInv)); // only an update can trip
    const resetGNow = tf.maximum(f.resetG, tripA);
    const gInv = resetOr(resetGNow as tf.Tensor1D, shermanMorrisonDecayed(f.gInv, g));
    const tripG = tf.mul(tf.sub(1, resetGNow), tripped(gInv));
    const trip = tf.maximum(tripA, tripG) as tf.Tensor1D;
    // After the G step: resetA is set by either trip (A's own flag was consumed above); resetG
    // only by G's trip, since A's trip already reset G at this step.
    return { aInv, gInv, resetA: trip, resetG: tripG as tf.Tensor1D };
  });
}

/**
 * The preconditioned gradient of one dense layer y = x·W + b, W [P, in, out], b [P, out] (or
 * null): P = A⁻¹ · [∇W ; ∇bᵀ] · G⁻¹ — the transpose of the reference's G⁻¹·[∇W | ∇b]·A⁻¹ for
 * PyTorch's [out, in] layout, equal because both factors stay symmetric (mkor.py 204–233) — then
 * rescaled per member to the raw gradient's size, fix = (‖∇W‖ + ‖∇b‖) / (‖P_W‖ + ‖P_b‖), a sum
 * of the separate norms (mkor.py 235–258); where fix is NaN (a zero gradient) the raw gradient
 * stays.
 */
export function preconditionDense(
  gradW: tf.Tensor3D,
  gradB: tf.Tensor2D | null,
  f: Pick<LayerFactors, 'aInv' | 'gInv'>,
): { kernel: tf.Tensor3D; bias: tf.Tensor2D | null } {
  const [P, n, out] = gradW.shape;
  const norm = (t: tf.Tensor, axes: number[]) => tf.sqrt(tf.sum(tf.square(t), axes));
  const { pre, fix } = tf.tidy(() => {
    const stacked = gradB === null ? gradW : tf.concat([gradW, tf.reshape(gradB, [P, 1, out])], 1);
    const pre = tf.matMul(tf.matMul(f.aInv, stacked), f.gInv) as tf.Tensor3D; // [P, n (+1), out]
    const preW = tf.slice(pre, [0, 0, 0], [P, n, out]);
    const rawNorm = gradB === null ? norm(gradW, [1, 2]) : tf.add(norm(gradW, [1, 2]), norm(gradB, [1]));
    const preNorm = gradB === null ? norm(preW, [1, 2]) : tf.add(norm(preW, [1, 2]), norm(tf.slice(pre, [0, n, 0], [P, 1, out]), [1, 2]));
    return { pre, fix: tf.div(rawNorm, preNorm) as tf.Tensor1D };
  });
  const rescaled = (raw: tf.Tensor, part: tf.Tensor, shape: number[]) =>
    tf.tidy(() => tf.where(tf.reshape(tf.isNaN(fix), shape), raw, tf.mul(part, tf.reshape(fix, shape))));
  const kernel = rescaled(gradW, tf.slice(pre, [0, 0, 0], [P, n, out]), [P, 1, 1]) as tf.Tensor3D;
  const bias = gradB === null ? null : (rescaled(gradB, tf.reshape(tf.slice(pre, [0, n, 0], [P, 1, out]), [P, out]), [P, 1]) as tf.Tensor2D);
  tf.dispose([pre, fix]);
  return { kernel, bias };
}
