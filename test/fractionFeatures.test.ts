// The fraction-of-training variant of μLO in meta-training: each member's planned run is its
// particle's episode, set at the start of a unit and again whenever a particle restarts.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { perturbedThetas, sampleNoise } from '../src/meta/estimator.js';
import { initialParticles } from '../src/meta/particles.js';
import { flattenTheta } from '../src/meta/thetaVector.js';
import { cachedLearnedOptimizer, runTruncationUnit, type TruncationUnitInput } from '../src/meta/truncationUnit.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe('fraction features in truncation units', () => {
  it("plan each member's run as its particle's episode, across restarts", () => {
    const config = { fractionFeatures: true };
    const lo = cachedLearnedOptimizer('small_fc_lopt', config);
    const thetaParams = lo.initTheta(2);
    const theta = flattenTheta(lo, thetaParams);
    const lengths = { kind: 'log-uniform' as const, min: 6, max: 12 };
    const K = 2;
    let input: TruncationUnitInput = {
      task: 'mlp-mnist8-w8-d1-relu-b8-mup',
      lopt: { arch: 'small_fc_lopt', config },
      root: 'fraction',
      particles: [0, 1],
      particleStates: initialParticles('fraction', K, lengths, 0),
      lengths,
      thetas: perturbedThetas(theta, sampleNoise('fraction', 0, K, theta.length), 0.01, 0, K),
      steps: 5,
      start: 'persistent',
      state: null,
    };
    // 4 truncations of 5 steps over episodes of 6–12 steps: every particle restarts at least once.
    const episodes = new Set<number>();
    for (let j = 0; j < 4; j++) {
      const out = runTruncationUnit(input);
      const horizons = out.state.optNumbers.slice(2 * K, 4 * K);
      expect(horizons).toEqual(out.particleStates.flatMap((p) => [p.length, p.length]));
      out.particleStates.forEach((p) => episodes.add(p.episode));
      expect(Array.from(out.losses).every(Number.isFinite)).toBe(true);
      input = { ...input, state: out.state, particleStates: out.particleStates };
    }
    expect(Math.max(...episodes)).toBeGreaterThan(0);
  });
});

describe('linear loss weighting', () => {
  it('weighs step t of an episode of length L by 2(t+1)/L in the meta-loss, and leaves the raw losses alone', () => {
    const lo = cachedLearnedOptimizer('small_fc_lopt', {});
    const theta = flattenTheta(lo, lo.initTheta(2));
    const lengths = { kind: 'fixed' as const, steps: 20 };
    const input: TruncationUnitInput = {
      task: 'mlp-mnist8-w8-d1-relu-b8-mup',
      lopt: { arch: 'small_fc_lopt', config: {} },
      root: 'weighting',
      particles: [0],
      particleStates: initialParticles('weighting', 1, lengths, 0),
      lengths,
      thetas: perturbedThetas(theta, sampleNoise('weighting', 0, 1, theta.length), 0.01, 0, 1),
      steps: 5,
      start: 'persistent',
      state: null,
    };
    const uniform = runTruncationUnit(input);
    const linear = runTruncationUnit({ ...input, lossWeighting: 'linear' });
    expect(Array.from(linear.rawLosses)).toEqual(Array.from(uniform.rawLosses));
    for (let t = 0; t < 5; t++) {
      for (let m = 0; m < 2; m++) {
        expect(linear.losses[t * 2 + m]).toBeCloseTo(uniform.losses[t * 2 + m]! * ((2 * (t + 1)) / 20), 6);
      }
    }
  });
});
