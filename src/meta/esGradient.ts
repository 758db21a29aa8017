// The estimators' arithmetic, on the host in float64 and in particle order, so a meta-gradient
// does not depend on how the particles were spread over workers. DESIGN.md "Meta-training".
// DESIGN.md (as learned_optimization) writes the perturbation as e = σε and divides by 2σ²; here
// the noise is stored unscaled, ε ~ N(0, I), so the same estimate reads ·ε / 2σ.

/** One particle's result from a truncation: its antithetic losses per step and where its episode ended. */
export interface ParticleLosses {
  /** Normalized pre-update training losses of the positive member, one per step. */
  positive: ArrayLike<number>;
  /** The same for the negative member. */
  negative: ArrayLike<number>;
  /** First step of the truncation that belongs to a new episode, or −1 when none did. */
  resetStep: number;
}

const mean = (xs: ArrayLike<number>, from: number, to: number, other: ArrayLike<number>): number => {
  if (to <= from) return 0;
  let s = 0;
  for (let t = from; t < to; t++) s += xs[t]! - other[t]!;
  return s / (to - from);
};

/** Mean over steps and over both members of the particles' losses (the reported meta-loss). */
export function meanLoss(particles: readonly ParticleLosses[]): number {
  let s = 0;
  let n = 0;
  for (const p of particles) {
    for (let t = 0; t < p.positive.length; t++) s += p.positive[t]! + p.negative[t]!;
    n += 2 * p.positive.length;
  }
  return n === 0 ? 0 : s / n;
}

/**
 * Truncated PES. Per particle i: a_i = mean of Δ = L⁺ − L⁻ over the steps before its episode
 * ended, b_i = over the steps after; acc_i += ε_i; g = mean_i(a_i·acc_i + b_i·ε_i) / (2σ); and
 * acc_i = ε_i when the episode ended in this truncation. `accumulators` ([K, n], one row per
 * particle) is updated in place.
 */
export function pesGradient(particles: readonly ParticleLosses[], noise: Float32Array, accumulators: Float32Array, sigma: number): Float64Array {
  const K = particles.length;
  const n = noise.length / K;
  const g = new Float64Array(n);
  particles.forEach((p, i) => {
    const T = p.positive.length;
    const r = p.resetStep < 0 ? T : p.resetStep;
    const a = mean(p.positive, 0, r, p.negative);
    const b = mean(p.positive, r, T, p.negative);
    const eps = noise.subarray(i * n, (i + 1) * n);
    const acc = accumulators.subarray(i * n, (i + 1) * n);
    for (let j = 0; j < n; j++) {
      acc[j] = acc[j]! + eps[j]!;
      g[j] = g[j]! + a * acc[j]! + b * eps[j]!;
    }
    if (p.resetStep >= 0) acc.set(eps);
  });
  const scale = 1 / (K * 2 * sigma);
  for (let j = 0; j < n; j++) g[j] = g[j]! * scale;
  return g;
}

/** Antithetic ES: g = mean_i Δ_i·ε_i / (2σ), Δ_i one number per particle (sign-ES: sign(Δ_i)·signScale). */
export function esGradient(deltas: readonly number[], noise: Float32Array, sigma: number, signScale?: number): Float64Array {
  const K = deltas.length;
  const n = noise.length / K;
  const g = new Float64Array(n);
  deltas.forEach((d0, i) => {
    const d = signScale === undefined ? d0 : Math.sign(d0) * signScale;
    const eps = noise.subarray(i * n, (i + 1) * n);
    for (let j = 0; j < n; j++) g[j] = g[j]! + d * eps[j]!;
  });
  const scale = 1 / (K * 2 * sigma);
  for (let j = 0; j < n; j++) g[j] = g[j]! * scale;
  return g;
}

/** Truncated ES's Δ_i: the mean over the truncation's steps of L⁺ − L⁻. */
export function truncationDelta(p: ParticleLosses): number {
  return mean(p.positive, 0, p.positive.length, p.negative);
}
