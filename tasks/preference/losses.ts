// The per-pair preference objectives. Every loss here is −log σ(z) = softplus(−z) of a logit z
// built from the policy's (θ) and the reference's response log-probabilities; tf.softplus is the
// stable form (exact for large |z|, where log(1 + exp(·)) would overflow or round to 0).
import * as tf from '@tensorflow/tfjs-core';
import type { PreferenceLoss } from './config.js';

/**
 * Per-pair inputs, all the same shape: S = summed response log-probability (policy θ and
 * reference), len = response length in characters (A = S / len is the per-character mean).
 */
export interface PairScores {
  policyChosen: tf.Tensor;
  policyRejected: tf.Tensor;
  refChosen: tf.Tensor;
  refRejected: tf.Tensor;
  lenChosen: tf.Tensor;
  lenRejected: tf.Tensor;
}

/**
 * DPO's β (Rafailov et al. 2023, "Direct Preference Optimization"): the paper's and the official
 * README's runs use loss.beta=0.1 (eric-mitchell/direct-preference-optimization@f8b8c0f README.md
 * lines 48–52; config/loss/dpo.yaml leaves it required).
 */
export const DPO_BETA = 0.1;
/**
 * SimPO's defaults (Meng, Xia & Chen 2024, "SimPO: Simple Preference Optimization with a
 * Reference-Free Reward"): princeton-nlp/SimPO@1b3e8f3 scripts/simpo_config.py lines 55–56,
 * beta = 2.0 and gamma_beta_ratio = 0.25, so γ = 0.25·β = 0.5.
 */
export const SIMPO_BETA = 2.0;
export const SIMPO_GAMMA_BETA_RATIO = 0.25;
/** MIPO's β (Jang 2024, "Modulated Intervention Preference Optimization"): ncsoft/MIPO@7eff758 configs/llama3/config.yaml line 48, beta: 20.0. */
export const MIPO_BETA = 20.0;

/** Per pair: the loss, and the reward margin the official trainer logs (accuracy counts margin > 0). */
export interface PairObjective {
  loss: tf.Tensor;
  margin: tf.Tensor;
}

/**
 * DPO: z = β[(Sθ(yw) − Sref(yw)) − (Sθ(yl) − Sref(yl))], L = −log σ(z) = softplus(−z), with summed
 * log-probabilities. Margin = chosen − rejected reward = z (rewards β(Sθ − Sref)).
 * Reference: eric-mitchell/direct-preference-optimization@f8b8c0f trainers.py lines 70–85
 * (preference_loss: logits = pi_logratios − ref_logratios, losses = −logsigmoid(β·logits),
 * chosen/rejected rewards β(policy − reference)) and line 253 (rewards/margins).
 */
export function dpoObjective(s: PairScores): PairObjective {
  return tf.tidy(() => {
    const z = tf.mul(DPO_BETA, tf.sub(tf.sub(s.policyChosen, s.refChosen), tf.sub(s.policyRejected, s.refRejected)));
    return { loss: tf.softplus(tf.neg(z)), margin: z };
  });
}

/**
 * SimPO: with A = S / len, z = β(Aθ(yw) − Aθ(yl)) − γ, γ = gamma_beta_ratio·β; L = softplus(−z).
 * No reference model. Margin = β(Aθ(yw) − Aθ(yl)) (their rewards β·A, without γ).
 * Reference: princeton-nlp/SimPO@1b3e8f3 scripts/simpo_trainer.py lines 576–583 (logits =
 * pi_logratios − gamma_beta_ratio; losses = −logsigmoid(β·logits)), lines 592–593 (rewards β·A),
 * lines 719 and 724 (accuracies chosen > rejected, margins chosen − rejected); A is the average
 * log-probability (average_log_prob=True, line 632).
 */
export function simpoObjective(s: PairScores): PairObjective {
  return tf.tidy(() => {
    const margin = tf.mul(SIMPO_BETA, tf.sub(tf.div(s.policyChosen, s.lenChosen), tf.div(s.policyRejected, s.lenRejected)));
    const z = tf.sub(margin, SIMPO_GAMMA_BETA_RATIO * SIMPO_BETA);
    return { loss: tf.softplus(tf.neg(z)), margin };
  });
}

/**
 * MIPO: with average log-probabilities A = S / len, K = Aref(yw) − Aref(yl) and
 * z = β(Aθ(yw) − Aθ(yl) − log(1 + e^K)); L = softplus(−z). The reference's term
 * log(1 + e^K) = softplus(K) grows with how strongly the reference already prefers yw (≈ K) and
 * tends to 0 where it prefers yl, so it sets, per pair, the gap the policy's own averages must
 * exceed before the loss flattens. Margin = β(Aθ(yw) − Aθ(yl)): their trainer logs
 * no reward margin, only theta = Aθ(yw) − Aθ(yl) and K (lines 189–190); we scale theta by β as the
 * other losses' rewards are.
 * Reference: ncsoft/MIPO@7eff758 src/trainers/mipo_trainer.py lines 219–221 (K, custom_logit,
 * losses = −logsigmoid(β·custom_logit)); average log-probabilities from lines 136–138 and 154, 176.
 */
export function mipoObjective(s: PairScores): PairObjective {
  return tf.tidy(() => {
    const policyGap = tf.sub(tf.div(s.policyChosen, s.lenChosen), tf.div(s.policyRejected, s.lenRejected));
    const K = tf.sub(tf.div(s.refChosen, s.lenChosen), tf.div(s.refRejected, s.lenRejected));
    const z = tf.mul(MIPO_BETA, tf.sub(policyGap, tf.softplus(K)));
    return { loss: tf.softplus(tf.neg(z)), margin: tf.mul(MIPO_BETA, policyGap) };
  });
}

/** The objective of `kind`, per pair (elementwise over the inputs' shape). */
export function pairObjective(kind: PreferenceLoss, s: PairScores): PairObjective {
  switch (kind) {
    case 'dpo':
      return dpoObjective(s);
    case 'simpo':
      return simpoObjective(s);
    case 'mipo':
      return mipoObjective(s);
  }
}
