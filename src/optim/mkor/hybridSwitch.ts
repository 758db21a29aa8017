// MKOR-H's fall-back to the first-order optimizer. The paper (Mozaffari et al. 2023, §3.3.2) names
// a "loss decrease rate-based switching method" without its statistic, window or threshold, and
// the authors' code has none (their hkor.py prototype keeps an unused `self.sgd` flag). This rule
// is therefore ours, after the knee-point detector in Mozaffari's thesis (Appendix A.8: switch
// when the recent improvement rate falls below β × the rate since the phase began):
//   ℓ̄ₜ = 0.9·ℓ̄ₜ₋₁ + 0.1·lossₜ (ℓ̄₀ = loss₀), per member;
//   every `window` steps from t = 2·window on, recent = (ℓ̄ₜ₋w − ℓ̄ₜ)/w and
//   overall = (ℓ̄_w − ℓ̄ₜ)/(t − w); a member switches when recent < β·overall, for good.
// A switched member's gradients skip the preconditioning; the first-order optimizer's state is kept.
import * as tf from '@tensorflow/tfjs-core';

export interface HybridOptions {
  /** Steps between checks, and the warm-in before the first reference point. */
  window: number;
  /** Switch when the recent rate of decrease falls below beta × the overall rate. */
  beta: number;
}

export type HybridState = {
  /** ℓ̄, the smoothed loss [P]. */
  smoothed: tf.Tensor;
  /** ℓ̄ at the last check [P]. */
  lastCheck: tf.Tensor;
  /** ℓ̄ at step `window`, the overall rate's start [P]. */
  start: tf.Tensor;
  /** 1 where the member has switched to the first-order optimizer [P]. */
  switched: tf.Tensor;
};

export function initialHybridState(P: number): HybridState {
  return { smoothed: tf.zeros([P]), lastCheck: tf.zeros([P]), start: tf.zeros([P]), switched: tf.zeros([P]) };
}

/** The state after the loss [P] at step t (0-based) is seen; `switched` applies from this step on. */
export function updateHybrid(s: HybridState, loss: tf.Tensor, t: number, o: HybridOptions): HybridState {
  return tf.tidy(() => {
    const smoothed = t === 0 ? tf.clone(loss) : tf.add(tf.mul(s.smoothed, 0.9), tf.mul(loss, 0.1));
    if (t % o.window !== 0 || t < o.window) return { smoothed, lastCheck: tf.clone(s.lastCheck), start: tf.clone(s.start), switched: tf.clone(s.switched) };
    if (t === o.window) return { smoothed, lastCheck: tf.clone(smoothed), start: tf.clone(smoothed), switched: tf.clone(s.switched) };
    const recent = tf.div(tf.sub(s.lastCheck, smoothed), o.window);
    const overall = tf.div(tf.sub(s.start, smoothed), t - o.window);
    // A NaN loss compares false: it never switches a member by itself.
    const knee = tf.cast(tf.less(recent, tf.mul(overall, o.beta)), 'float32');
    return { smoothed, lastCheck: tf.clone(smoothed), start: tf.clone(s.start), switched: tf.maximum(s.switched, knee) };
  });
}
