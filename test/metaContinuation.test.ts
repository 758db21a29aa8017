// Continuation files: a small state (theta, outer optimizer, step, recipe hash, segments) that a
// meta-training run continues from on any machine, its particles restarting as after a resample.
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { loadCheckpoint } from '../src/checkpoint/index.js';
import type { UnitRunner } from '../src/meta/estimator.js';
import type { MetaTrainEvent } from '../src/meta/events.js';
import { parseRecipe, type Recipe } from '../src/meta/recipe.js';
import { metaTrain, snapshotDir, type MetaTrainOptions } from '../src/meta/trainer.js';
import { runTruncationUnit } from '../src/meta/truncationUnit.js';
import { listCheckpoints } from '../src/meta/runDir.js';
import { metaTrainCommand } from '../src/cli/metaTrainCommand.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-continuation-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function recipe(outerSteps = 6, seed = 3): Recipe {
  return parseRecipe(
    {
      name: 'continuation',
      seed,
      learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 8 } },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'fixed', task: 'quadratic-d4-k10' },
          particles: 4,
          particlesPerUnit: 2,
          truncationLength: 5,
          episodeLength: { min: 8, max: 16 },
          initialOffset: 8,
        },
      ],
      outerSteps,
      outer: { peakLr: 0.01, endLr: 0.001, warmupSteps: 1 },
      checkpoint: { everySteps: 2, everyMinutes: 60, keep: 10 },
    },
    'test',
  );
}

async function train(runDir: string, r: Recipe, extra: Partial<MetaTrainOptions> = {}) {
  const events: MetaTrainEvent[] = [];
  const units: { step: number; fresh: boolean; episodes: number[] }[] = [];
  let step = -1;
  const run: UnitRunner = async (input) => {
    units.push({ step, fresh: input.state === null, episodes: input.particleStates.map((p) => p.episode) });
    return runTruncationUnit(input);
  };
  const result = await metaTrain({
    recipe: r,
    runDir,
    run,
    workers: 0,
    backend: 'wasm',
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'run-start') step = e.startStep;
      if (e.type === 'outer-step') step = e.step;
    },
    ...extra,
  });
  return { result, events, units };
}

describe('continuation files', () => {
  it('are written at every checkpoint, small, with the segment run so far', async () => {
    const file = join(dir, 'a.lopt');
    const { result } = await train(join(dir, 'a'), recipe(), { continuation: file, stopAfter: 3 });
    expect(result.status).toBe('stopped');
    const ckpt = await loadCheckpoint(file);
    const state = ckpt.training!.state as {
      kind: string;
      step: number;
      segments: { fromStep: number; toStep: number; seconds: number }[];
      estimators: unknown[];
    };
    expect(state.kind).toBe('continuation');
    expect(state.step).toBe(3);
    expect(state.estimators).toEqual([]);
    expect(state.segments).toHaveLength(1);
    expect(state.segments[0]).toMatchObject({ fromStep: 0, toStep: 3 });
    expect(state.segments[0]!.seconds).toBeGreaterThan(0);
    // theta (1,762) and AdamW's two moments: no particle state.
    expect((await stat(file)).size).toBeLessThan(40_000);
    const theta = Float32Array.from(ckpt.theta.data.flatMap((d) => Array.from(d)));
    expect(Buffer.from(theta.buffer).equals(Buffer.from(result.theta.buffer))).toBe(true);
  });

  it('continue on a fresh folder from the saved step, particles restarted, and add a segment', async () => {
    const file = join(dir, 'b.lopt');
    await train(join(dir, 'b1'), recipe(), { continuation: file, stopAfter: 3 });
    const copy = join(dir, 'b-copy.lopt');
    await copyFile(file, copy);
    const first = await train(join(dir, 'b2'), recipe(), { continuation: file, snapshotEvery: 2 });
    expect(first.result.status).toBe('done');
    expect(first.events[0]).toMatchObject({ type: 'run-start', startStep: 3 });
    // The first continued step starts every unit from initialization, in a new episode numbered from the outer step.
    const firstStep = first.units.filter((u) => u.step === 3);
    expect(firstStep.length).toBe(2);
    expect(firstStep.map((u) => [u.fresh, ...u.episodes])).toEqual([
      [true, 4, 4],
      [true, 4, 4],
    ]);
    const state = (await loadCheckpoint(file)).training!.state as { step: number; segments: { fromStep: number; toStep: number }[] };
    expect(state.step).toBe(6);
    expect(state.segments.map((s) => [s.fromStep, s.toStep])).toEqual([
      [0, 3],
      [3, 6],
    ]);
    // The per-step history spans both segments: the first three steps as the first machine logged them.
    const ckpt = await loadCheckpoint(file);
    const history = (key: string) => Array.from(ckpt.training!.arrays.data[ckpt.training!.arrays.names.indexOf(`history/${key}`)]!);
    const logged = (await readFile(join(dir, 'b1', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { metaLoss: number; metaGradNorm: number });
    expect(history('metaLoss')).toHaveLength(6);
    expect(history('metaGradNorm')).toHaveLength(6);
    expect(history('seconds').every((s) => s > 0)).toBe(true);
    expect(history('metaLoss').slice(0, 3)).toEqual(logged.map((m) => Math.fround(m.metaLoss)));
    expect(history('metaGradNorm').slice(0, 3)).toEqual(logged.map((m) => Math.fround(m.metaGradNorm)));
    // Theta kept every 2 steps of this segment beside the file, for model selection.
    const snapshots = (await readdir(snapshotDir(file))).sort();
    expect(snapshots).toEqual(['step-00000004.lopt', 'step-00000006.lopt']);
    const last = await loadCheckpoint(join(snapshotDir(file), 'step-00000006.lopt'));
    expect(last.training).toBeUndefined();
    expect(Buffer.from(Float32Array.from(last.theta.data.flatMap((d) => Array.from(d))).buffer).equals(Buffer.from(first.result.theta.buffer))).toBe(true);
    // The same continuation file gives the same run.
    const again = await train(join(dir, 'b3'), recipe(), { continuation: copy });
    expect(Buffer.from(again.result.theta.buffer).equals(Buffer.from(first.result.theta.buffer))).toBe(true);
  });

  it('are refused for another recipe, in place of a run checkpoint, with --resume, or when corrupt', async () => {
    const file = join(dir, 'c.lopt');
    await train(join(dir, 'c1'), recipe(), { continuation: file, stopAfter: 2 });
    await expect(train(join(dir, 'c2'), recipe(6, 4), { continuation: file })).rejects.toThrow(/continues another recipe \(recipe hash/);
    const [runCheckpoint] = await listCheckpoints(join(dir, 'c1'));
    await expect(train(join(dir, 'c3'), recipe(), { continuation: runCheckpoint!.path })).rejects.toThrow(/is not a continuation file/);
    await expect(train(join(dir, 'c1'), recipe(), { continuation: file, resume: true })).rejects.toThrow(/give one/);
    const bytes = await readFile(file);
    const corrupt = join(dir, 'c-corrupt.lopt');
    await writeFile(corrupt, bytes.subarray(0, bytes.length - 100));
    await expect(train(join(dir, 'c4'), recipe(), { continuation: corrupt })).rejects.toThrow(/c-corrupt\.lopt/);
  });
});

describe('lopt meta-train --continuation', () => {
  it('goes with --recipe only', async () => {
    await expect(metaTrainCommand({ continuation: join(dir, 'x.lopt'), resume: join(dir, 'a') })).rejects.toThrow(
      /--continuation goes with --recipe \(not --resume\)/,
    );
    await expect(metaTrainCommand({ continuation: join(dir, 'x.lopt') })).rejects.toThrow(/--continuation goes with --recipe/);
  });
});
