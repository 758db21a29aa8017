// Model selection (lopt select): candidates scored on a meta-validation suite by the geometric
// mean of final training loss / tuned Adam's, the lowest selected.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { candidatePaths } from '../src/cli/benchCommand.js';
import { runBenchUnit } from '../src/evaluate/benchRun.js';
import type { BenchResults } from '../src/evaluate/results.js';
import { pickLowest, scoreCandidates, selectModel } from '../src/evaluate/selectModel.js';
import { saveLearnedOptimizer } from '../src/lopt/io.js';
import { smallFcLopt } from '../src/lopt/smallFcLopt.js';
import { loadSuite, parseSuite, shippedSuitePath } from '../tasks/suites.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-select-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bench results holding only what scoring reads. */
function results(finals: Record<string, (number | null)[]>): BenchResults {
  const tasks = finals['adam']!.map((_, i) => ({
    task: `t${i}`,
    results: Object.entries(finals).map(([optimizer, f]) => ({ optimizer, finalTrainLoss: f[i]! })),
  }));
  return { tasks } as unknown as BenchResults;
}

describe('scoring', () => {
  it('is the geometric mean of final loss / tuned Adam, Infinity when a candidate diverged', () => {
    const r = results({ adam: [1, 2, 4], 'lopt:a': [0.5, 1, 8], 'lopt:b': [1, null, 4] });
    const [a, b] = scoreCandidates(r, ['a', 'b']);
    expect(a!.ratios).toEqual([0.5, 0.5, 2]);
    expect(a!.score).toBeCloseTo(Math.cbrt(0.5 * 0.5 * 2), 12);
    expect(b!.ratios[1]).toBe(Infinity);
    expect(b!.score).toBe(Infinity);
    expect(pickLowest([a!, b!])).toBe('a');
    expect(pickLowest([{ ...a!, candidate: 'early' }, { ...a!, candidate: 'late' }, b!])).toBe('late');
  });
});

describe('lopt select', () => {
  it('runs every candidate once beside tuned Adam and selects the lowest score', async () => {
    const lo = smallFcLopt();
    const moving = lo.initTheta(3);
    const still = lo.initTheta(3);
    for (const name of ['mlp/w2', 'mlp/b2']) {
      const t = still[name]!;
      still[name] = tf.zerosLike(t);
      t.dispose();
    }
    const folder = join(dir, 'snapshots');
    await mkdir(folder);
    await saveLearnedOptimizer(join(folder, 'step-00000002.lopt'), lo, still);
    await saveLearnedOptimizer(join(folder, 'step-00000001.lopt'), lo, moving);
    await writeFile(join(folder, 'notes.txt'), 'not a candidate');
    const candidates = candidatePaths([folder]);
    expect(candidates.map((c) => c.slice(folder.length + 1))).toEqual(['step-00000001.lopt', 'step-00000002.lopt']);
    const suite = parseSuite({ name: 'tiny', description: 'one task', tasks: [{ task: 'mlp-mnist8-w8-d1-relu-b16-mup', steps: 25 }] });
    const sel = await selectModel({ suite, candidates, budget: 3, seeds: 1, outDir: join(dir, 'bench'), backend: 'wasm', run: runBenchUnit });
    // Recomputed from the stored results: final loss over tuned Adam's.
    const t = sel.results.tasks[0]!;
    const adam = t.results.find((r) => r.optimizer === 'adam')!.finalTrainLoss!;
    const want = candidates.map((c) => t.results.find((r) => r.optimizer === `lopt:${c}`)!.finalTrainLoss! / adam);
    expect(sel.scores.map((s) => s.score)).toEqual(want.map((w) => expect.closeTo(w, 12)));
    // A zero output layer never moves: its loss stays at the start, above a learned optimizer's that steps.
    expect(want[1]).not.toBe(want[0]);
    expect(sel.selected).toBe(candidates[want[0]! < want[1]! ? 0 : 1]);
    tf.dispose([...Object.values(moving), ...Object.values(still)]);
  }, 120_000);

  it('refuses missing candidates and empty folders', async () => {
    expect(() => candidatePaths([join(dir, 'nope.lopt')])).toThrow(/no file or folder/);
    const empty = join(dir, 'empty');
    await mkdir(empty);
    expect(() => candidatePaths([empty])).toThrow(/holds no \.lopt file/);
  });

  it('the shipped meta-validation suites share no task with the generalization suite', () => {
    const gen = new Set(loadSuite(shippedSuitePath('generalization')).tasks.map((t) => t.task));
    for (const name of ['meta-validation', 'meta-validation-sp']) {
      const suite = loadSuite(shippedSuitePath(name));
      expect(suite.tasks.length).toBeGreaterThanOrEqual(5);
      for (const t of suite.tasks) expect(gen.has(t.task), t.task).toBe(false);
    }
  });
});
