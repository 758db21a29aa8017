// The gradient estimators against closed forms: LearnableSGD (theta = log lr) on the 1-D quadratic
// f(w) = ½(w − c)², where one step multiplies the error by (1 − lr), so every loss is known.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { esGradient, pesGradient } from '../src/meta/esGradient.js';
import { sampleNoise, type UnitRunner } from '../src/meta/estimator.js';
import { fullEsEstimator } from '../src/meta/fullEsEstimator.js';
import { episodeSeeds } from '../src/meta/particles.js';
import { truncatedEstimator } from '../src/meta/truncatedEstimator.js';
import { runTruncationUnit } from '../src/meta/truncationUnit.js';
import { familyFromSpec, fixedFamily } from '../tasks/families.js';
import { quadraticTask } from '../tasks/synthetic/quadratic.js';
import { stateful } from './helpers/statefulEstimator.js';

const TASK = 'quadratic-d1-k1-diag';
const run: UnitRunner = async (input) => runTruncationUnit(input);
const lopt = { arch: 'learnable_sgd', config: { initialLr: 0.1 } };
const THETA = new Float32Array([Math.log(0.1)]);

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

/** The task's fixed instance: target c and the normalizer's E[f(w0)] = ½(1 + c²). */
function instance() {
  const task = quadraticTask({ dim: 1, condition: 1, rotated: false });
  const c = task.instance().target[0]!;
  return { task, c, e0: 0.5 * (1 + c * c) };
}

/** w0 of a particle's episode, as the task initializes it. */
function initialW(root: string, particle: number, episode: number): number {
  const { task } = instance();
  const seed = episodeSeeds(root, particle, episode).initSeed;
  const w = task.init([seed]).w!;
  const v = w.dataSync()[0]!;
  w.dispose();
  return v;
}

/**
 * Normalized losses of a run of segments, float64: segment s has `steps[s]` steps at learning
 * rate lrs[s]; the pre-update loss ½e²/E0 is recorded at every step (clipped to 1.5 as the task does).
 */
function segmentLosses(e: number, e0: number, lrs: number[], steps: number[]): number[][] {
  return lrs.map((lr, s) =>
    Array.from({ length: steps[s]! }, () => {
      const l = Math.min((0.5 * e * e) / e0, 1.5);
      e *= 1 - lr;
      return l;
    }),
  );
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('truncated PES', () => {
  const sigma = 0.01;
  const T = 5;
  const truncations = 4;
  const lengths = { kind: 'fixed' as const, steps: T * truncations };

  function pes(root: string, particles: number) {
    return truncatedEstimator({
      kind: 'truncated-pes',
      family: fixedFamily(TASK),
      lopt,
      root,
      particles,
      particlesPerUnit: particles,
      sigma,
      truncationLength: T,
      lengths,
      initialOffset: 0,
      resampleEvery: 0,
      thetaSize: 1,
    });
  }

  it('summed over the truncations of one episode, equals the episode-level estimate Σ_j Δ_j·Σ_{k≤j} ε_k / 2σ computed independently', async () => {
    const root = 'pes-sum';
    const K = 3;
    const est = stateful(pes(root, K));
    let total = 0;
    for (let j = 0; j < truncations; j++) total += (await est.estimate(THETA, j, run)).grad[0]!;

    const { e0, c } = instance();
    let expected = 0;
    for (let i = 0; i < K; i++) {
      const eps = Array.from({ length: truncations }, (_, j) => sampleNoise(root, j, K, 1)[i]!);
      const lr = (sign: number) => eps.map((x) => Math.exp(THETA[0]! + sign * sigma * x));
      const e = initialW(root, i, 0) - c;
      const pos = segmentLosses(e, e0, lr(1), new Array(truncations).fill(T));
      const neg = segmentLosses(e, e0, lr(-1), new Array(truncations).fill(T));
      let acc = 0;
      for (let j = 0; j < truncations; j++) {
        acc += eps[j]!;
        expected += ((mean(pos[j]!) - mean(neg[j]!)) * acc) / (2 * sigma);
      }
    }
    expected /= K;
    expect(Math.abs(expected)).toBeGreaterThan(1e-3);
    expect(total).toBeCloseTo(expected, 3);
    expect(Math.abs(total - expected) / Math.abs(expected)).toBeLessThan(2e-3);
  });

  it('is unbiased: the mean over many seeds converges to the analytic meta-gradient', async () => {
    const { e0, c } = instance();
    const lr = Math.exp(THETA[0]!);
    const samples: number[] = [];
    const analytic: number[] = [];
    const K = 16;
    for (let seed = 0; seed < 12; seed++) {
      const root = `pes-unbiased-${seed}`;
      const est = stateful(pes(root, K));
      const perParticle = new Array<number>(K).fill(0);
      // One particle's estimate per episode: summing K-particle means loses the per-particle
      // samples, so run the estimator and recover them from its linear form (K·mean).
      let total = 0;
      for (let j = 0; j < truncations; j++) total += (await est.estimate(THETA, j, run)).grad[0]!;
      samples.push(total);
      for (let i = 0; i < K; i++) {
        const e = initialW(root, i, 0) - c;
        // d/dθ Σ_j mean_{t∈j} ½e²(1−lr)^{2t}/E0, θ = log lr.
        let g = 0;
        for (let t = 0; t < T * truncations; t++) {
          const l = (0.5 * e * e * Math.pow(1 - lr, 2 * t)) / e0;
          g += (l * 2 * t * -lr) / (1 - lr) / T;
        }
        perParticle[i] = g;
      }
      analytic.push(mean(perParticle));
    }
    const m = mean(samples);
    const target = mean(analytic);
    const sd = Math.sqrt(samples.reduce((s, x) => s + (x - m) ** 2, 0) / (samples.length - 1));
    const se = sd / Math.sqrt(samples.length);
    // The check has teeth: the standard error is well below the gradient's size…
    expect(se).toBeLessThan(0.25 * Math.abs(target));
    // …and the estimate lies within 4 standard errors of the closed form.
    expect(Math.abs(m - target)).toBeLessThan(4 * se);
  });

  it('resets the accumulator to the step noise when an episode ends, and restarts the particle', async () => {
    const root = 'pes-reset';
    const est = stateful(pes(root, 2));
    for (let j = 0; j < truncations - 1; j++) await est.estimate(THETA, j, run);
    const before = est.state().arrays['accumulators']!.slice();
    // Truncation `truncations` starts the second episode at its first step.
    await est.estimate(THETA, truncations - 1, run);
    await est.estimate(THETA, truncations, run);
    const snap = est.state();
    const acc = snap.arrays['accumulators']!;
    const noise = sampleNoise(root, truncations, 2, 1);
    expect(Array.from(acc)).toEqual(Array.from(noise));
    expect(Array.from(before)).not.toEqual(Array.from(acc));
    const particles = snap.json['particles'] as { episode: number; step: number }[];
    expect(particles.map((p) => p.episode)).toEqual([1, 1]);
    expect(particles.map((p) => p.step)).toEqual([T, T]);
  });

  it('gives an exactly zero meta-gradient when the loss does not depend on theta', async () => {
    // mlp_lopt with a step multiplier so small that every step rounds away in float32 never moves
    // the parameters: L⁺ = L⁻ at every step. (stepMult 0 itself is refused: it must be in (0, 1].)
    const est = stateful(
      truncatedEstimator({
        kind: 'truncated-pes',
        family: fixedFamily('quadratic-d4-k10'),
        lopt: { arch: 'mlp_lopt', config: { stepMult: 1e-45 } },
        root: 'pes-constant',
        particles: 2,
        particlesPerUnit: 2,
        sigma,
        truncationLength: 3,
        lengths: { kind: 'fixed', steps: 4 },
        initialOffset: 0,
        resampleEvery: 0,
        thetaSize: 1762,
      }),
    );
    const theta = new Float32Array(1762).fill(0.01);
    for (let j = 0; j < 3; j++) {
      const r = await est.estimate(theta, j, run);
      expect(r.grad.every((x) => x === 0)).toBe(true);
      expect(r.metaLoss).toBeGreaterThan(0);
    }
  });

  it('with resampleEvery, draws a new task per unit and restarts its particles every N outer steps', async () => {
    const seen: { step: number; task: string; fresh: boolean; episodes: number[] }[] = [];
    let outer = 0;
    const spy: UnitRunner = async (input) => {
      seen.push({ step: outer, task: input.task, fresh: input.state === null, episodes: input.particleStates.map((p) => p.episode) });
      return runTruncationUnit(input);
    };
    const est = stateful(
      truncatedEstimator({
        kind: 'truncated-pes',
        family: familyFromSpec({ type: 'mlp', widths: [4, 8, 16, 32], depth: { min: 1, max: 3 }, batchSize: { min: 8, max: 8 } }),
        lopt,
        root: 'resample',
        particles: 2,
        particlesPerUnit: 2,
        sigma: 0.01,
        truncationLength: 2,
        lengths: { kind: 'fixed', steps: 1000 },
        initialOffset: 5,
        resampleEvery: 2,
        thetaSize: 1,
      }),
    );
    for (outer = 0; outer < 8; outer++) await est.estimate(THETA, outer, spy);
    expect(seen.map((s) => s.fresh)).toEqual([true, false, true, false, true, false, true, false]);
    expect(seen[1]!.task).toBe(seen[0]!.task);
    expect(new Set(seen.map((s) => s.task)).size).toBeGreaterThan(1);
    expect(seen.map((s) => s.episodes[0])).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    // After a restart the accumulator holds only the new noise.
    expect(Array.from(est.state().arrays['accumulators']!)).not.toEqual([0, 0]);
  });

  it('is pure: the state passed in is not changed, and the same state gives the same estimate and next state', async () => {
    const est = pes('pes-pure', 2);
    let state = est.init();
    for (let j = 0; j < 3; j++) state = (await est.estimate(THETA, j, state, run)).state;
    const frozen = structuredClone(state);
    const a = await est.estimate(THETA, 3, state, run);
    expect(state).toEqual(frozen);
    const b = await est.estimate(THETA, 3, state, run);
    expect(Array.from(b.result.grad)).toEqual(Array.from(a.result.grad));
    expect(b.state).toEqual(a.state);
    expect(a.state).not.toEqual(state);
    // A state it could not have produced is refused by name.
    expect(() => est.check({ ...state, json: { ...state.json, particles: [] } })).toThrow(
      'truncated-pes: expected the state of 2 particles, found a list of 0',
    );
    expect(() => est.check(est.restart(state, 9))).not.toThrow();
  });

  it('does not leak tensors over many truncations', async () => {
    const est = stateful(pes('pes-leak', 2));
    await est.estimate(THETA, 0, run);
    const before = tf.memory().numTensors;
    for (let j = 1; j < 30; j++) await est.estimate(THETA, j, run);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('truncated ES', () => {
  it('restarts both members from the positive trajectory each truncation and matches the closed form', async () => {
    const sigma = 0.01;
    const T = 5;
    const root = 'tes';
    const K = 2;
    const est = stateful(
      truncatedEstimator({
        kind: 'truncated-es',
        family: fixedFamily(TASK),
        lopt,
        root,
        particles: K,
        particlesPerUnit: K,
        sigma,
        truncationLength: T,
        lengths: { kind: 'fixed', steps: 1000 },
        initialOffset: 0,
        resampleEvery: 0,
        thetaSize: 1,
      }),
    );
    const { e0, c } = instance();
    const errors = Array.from({ length: K }, (_, i) => initialW(root, i, 0) - c);
    for (let j = 0; j < 3; j++) {
      const got = (await est.estimate(THETA, j, run)).grad[0]!;
      const noise = sampleNoise(root, j, K, 1);
      let expected = 0;
      errors.forEach((e, i) => {
        const lr = (sign: number) => Math.exp(THETA[0]! + sign * sigma * noise[i]!);
        const pos = segmentLosses(e, e0, [lr(1)], [T])[0]!;
        const neg = segmentLosses(e, e0, [lr(-1)], [T])[0]!;
        expected += ((mean(pos) - mean(neg)) * noise[i]!) / (2 * sigma);
        errors[i] = e * Math.pow(1 - lr(1), T); // the particle continues from its positive member
      });
      expected /= K;
      expect(Math.abs(expected)).toBeGreaterThan(1e-4);
      expect(Math.abs(got - expected) / Math.abs(expected)).toBeLessThan(2e-3);
    }
  });
});

describe('estimator arithmetic', () => {
  it('PES: a before the reset with the accumulator, b after with the fresh noise', () => {
    const noise = new Float32Array([1, 2, 3, 4]); // K = 2 particles, n = 2
    const acc = new Float32Array([10, 20, 0, 0]);
    const sigma = 0.5;
    const g = pesGradient(
      [
        { positive: [3, 3, 5, 5], negative: [1, 1, 1, 1], resetStep: 2 }, // a = 2, b = 4
        { positive: [1, 1, 1, 1], negative: [0, 0, 0, 0], resetStep: -1 }, // a = 1
      ],
      noise,
      acc,
      sigma,
    );
    // particle 0: acc = [11, 22] → 2·[11,22] + 4·[1,2] = [26, 52]; particle 1: acc = [3,4] → [3, 4].
    expect(Array.from(g)).toEqual([(26 + 3) / (2 * 2 * 0.5), (52 + 4) / (2 * 2 * 0.5)]);
    expect(Array.from(acc)).toEqual([1, 2, 3, 4]);
  });

  it('ES and sign-ES', () => {
    const noise = new Float32Array([1, -1]);
    expect(Array.from(esGradient([0.5, -0.25], noise, 0.5))).toEqual([(0.5 + 0.25) / 2]);
    expect(Array.from(esGradient([0.5, -0.25], noise, 0.5, 2))).toEqual([(2 + 2) / 2]);
  });
});

describe('full-episode ES', () => {
  it('matches the closed-form antithetic estimate for each meta-loss', async () => {
    const { e0, c } = instance();
    const sigma = 0.01;
    const steps = 8;
    for (const metaLoss of ['mean', 'last'] as const) {
      const root = `full-es-${metaLoss}`;
      const est = stateful(
        fullEsEstimator({
          family: fixedFamily(TASK),
          lopt,
          root,
          particles: 4,
          particlesPerUnit: 2,
          sigma,
          lengths: { kind: 'fixed', steps },
          metaLoss,
          freshBatches: 1,
          freshSplit: 'train',
          thetaSize: 1,
        }),
      );
      const outer = 3;
      const r = await est.estimate(THETA, outer, run);
      const noise = sampleNoise(root, outer, 4, 1);
      let expected = 0;
      for (let i = 0; i < 4; i++) {
        const e = initialW(root, i, outer) - c;
        const score = (sign: number) => {
          const l = segmentLosses(e, e0, [Math.exp(THETA[0]! + sign * sigma * noise[i]!)], [steps])[0]!;
          return metaLoss === 'mean' ? mean(l) : l[steps - 1]!;
        };
        expected += ((score(1) - score(-1)) * noise[i]!) / (2 * sigma);
      }
      expected /= 4;
      expect(Math.abs(expected)).toBeGreaterThan(1e-3);
      expect(Math.abs(r.grad[0]! - expected) / Math.abs(expected)).toBeLessThan(2e-3);
    }
  });
});
