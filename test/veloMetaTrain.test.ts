// VeLO meta-trained as VeLO was: full-episode ES with sign-ES, outer Adam on value-clipped
// meta-gradients; the shipped velo-s recipe validates.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import type { UnitRunner } from '../src/meta/estimator.js';
import type { MetaTrainEvent } from '../src/meta/events.js';
import { loadRecipe, parseRecipe } from '../src/meta/recipe.js';
import { metaTrain } from '../src/meta/trainer.js';
import { runTruncationUnit } from '../src/meta/truncationUnit.js';
import { loadLearnedOptimizer } from '../src/lopt/io.js';
import { runPaths } from '../src/meta/runDir.js';

const inProcess: UnitRunner = async (input) => runTruncationUnit(input);
let dir: string;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-velo-meta-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('VeLO meta-training', () => {
  it('velo-s validates: VeLO at LSTM 64 / 16 banks, full-es with sign-ES on the last iterate re-measured, value clipping', async () => {
    const { recipe } = await loadRecipe('meta-train/velo-s.json');
    expect(recipe.learnedOptimizer).toMatchObject({ arch: 'velo', config: { lstmHiddenSize: 64, paramInits: 16 }, zeroOutput: true });
    expect(recipe.estimators[0]).toMatchObject({ type: 'full-es', metaLoss: 'last-fresh' });
    expect(recipe.estimators[0]!.type === 'full-es' && recipe.estimators[0]!.signScale).toBeGreaterThan(0);
    expect(recipe.outer.clipValue).toBeGreaterThan(0);
  });

  it('lowers the meta-loss of a small VeLO on a quadratic family, and its theta loads', async () => {
    const recipe = parseRecipe(
      {
        name: 'velo-test',
        seed: 1,
        learnedOptimizer: { arch: 'velo', config: { lstmHiddenSize: 8, paramInits: 4 }, zeroOutput: true },
        estimators: [
          {
            type: 'full-es',
            family: { type: 'fixed', task: 'quadratic-d8-k10-diag' },
            particles: 8,
            particlesPerUnit: 8,
            sigma: 0.01,
            episodeLength: { steps: 30 },
            metaLoss: 'last',
            signScale: 0.01,
          },
        ],
        outerSteps: 80,
        outer: { peakLr: 0.01, endLr: 0.003, warmupSteps: 4, weightDecay: 0, clipValue: 0.1 },
        checkpoint: { everySteps: 1000, everyMinutes: 60, keep: 1 },
      },
      'velo-test',
    );
    const events: MetaTrainEvent[] = [];
    const runDir = join(dir, 'run');
    const result = await metaTrain({ recipe, runDir, run: inProcess, workers: 0, backend: 'wasm', onEvent: (e) => events.push(e) });
    expect(result.status).toBe('done');
    const losses = events.filter((e) => e.type === 'outer-step').map((e) => e.metaLoss);
    const first = losses.slice(0, 10).reduce((a, b) => a + b, 0) / 10;
    const last = losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
    expect(last).toBeLessThan(0.8 * first);
    const lo = await loadLearnedOptimizer(runPaths(runDir).theta);
    expect(lo.learnedOptimizer.arch).toBe('velo');
    lo.dispose();
  });
});
