// The model card is built from a finished run's files (and a bench's results), never by hand.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { writeModelCard } from '../src/evaluate/modelCard.js';
import type { BenchResults, OptimizerResult, TaskResult } from '../src/evaluate/results.js';
import { loadLearnedOptimizer } from '../src/lopt/io.js';
import { parseRecipe } from '../src/meta/recipe.js';
import { metaTrain } from '../src/meta/trainer.js';
import { runTruncationUnit } from '../src/meta/truncationUnit.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-card-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const recipe = (name: string, outerSteps: number, config: Record<string, boolean> = {}) =>
  parseRecipe(
    {
      name,
      learnedOptimizer: { arch: 'small_fc_lopt', config },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'fixed', task: 'quadratic-d4-k10' },
          particles: 2,
          particlesPerUnit: 2,
          truncationLength: 3,
          episodeLength: { steps: 9 },
        },
      ],
      outerSteps,
    },
    name,
  );

const result = (optimizer: string, loss: number | null, kind: 'baseline' | 'learned' = 'baseline'): OptimizerResult => ({
  optimizer,
  kind,
  tuned: kind === 'baseline',
  grid: [],
  selectedLr: null,
  selectedAtGridEdge: false,
  diverged: loss === null,
  divergedAt: loss === null ? 3 : null,
  finalTrainLoss: loss,
  bestTrainLoss: loss,
  testLoss: loss,
  testAccuracy: null,
  speedupOverAdam: null,
  speedupIsLowerBound: false,
  curve: [],
  seconds: 1,
});

/** One task's entry in a bench's results: an MLP of depth 1 and batch 128 holding `results`. */
const taskResult = (
  task: string,
  results: OptimizerResult[],
  o: { axis?: string; factor?: number; width?: number; parametrization?: 'mup' | 'sp' } = {},
): TaskResult => ({
  task,
  axis: o.axis ?? null,
  factor: o.factor ?? null,
  steps: 10,
  family: 'mlp',
  width: o.width ?? 32,
  depth: 1,
  batchSize: 128,
  parametrization: o.parametrization ?? 'mup',
  results,
  adamEnvelope: [],
});

/** Writes `<dir>/results.json` as `lopt bench` (or `lopt select`) would: 1 seed, 7 learning rates, wasm. */
async function writeBench(dir: string, suite: string, optimizers: string[], tasks: TaskResult[]): Promise<BenchResults> {
  const results: BenchResults = {
    format: 'lopt-bench',
    version: 1,
    suite,
    createdAt: new Date().toISOString(),
    backend: 'wasm',
    seeds: 1,
    budget: 7,
    maxGridExtensions: 3,
    optimizers,
    tasks,
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'results.json'), JSON.stringify(results));
  return results;
}

describe('model card', () => {
  it('refuses an unfinished run', async () => {
    const runDir = join(dir, 'unfinished');
    await metaTrain({ recipe: recipe('card-test', 4), runDir, run: async (i) => runTruncationUnit(i), workers: 0, backend: 'wasm', stopAfter: 2 });
    await expect(writeModelCard({ name: 'x', runDir, outDir: join(dir, 'out0') })).rejects.toThrow(
      /has not finished \(2 of 4 outer steps\); continue it first, or ship it as stopped early \(--stopped-early\)/,
    );
    expect(existsSync(join(dir, 'out0'))).toBe(false);
  });

  it('ships a run stopped early only when told so, and says so', async () => {
    const run = async (i: Parameters<typeof runTruncationUnit>[0]) => runTruncationUnit(i);
    const runDir = join(dir, 'stopped');
    await metaTrain({ recipe: recipe('card-stopped', 5), runDir, run, workers: 0, backend: 'wasm', stopAfter: 3 });
    const out = join(dir, 'out-stopped');
    const { card, checkpoint } = await writeModelCard({ name: 'stopped', runDir, stoppedEarly: true, outDir: out });
    expect(card).toContain('| outer steps | 3 |');
    expect(card).toContain("| stopped early | at outer step 3 of the recipe's 5 |");
    expect(card).toContain('--run runs/card-stopped --stopped-early');
    const lo = await loadLearnedOptimizer(checkpoint);
    expect(lo.checkpoint.eval!['metaTraining']).toMatchObject({ outerSteps: 3, plannedOuterSteps: 5 });
    lo.dispose();
    // A finished run is not "stopped early".
    const finished = join(dir, 'finished');
    await metaTrain({ recipe: recipe('card-finished', 2), runDir: finished, run, workers: 0, backend: 'wasm' });
    await expect(writeModelCard({ name: 'x', runDir: finished, stoppedEarly: true, outDir: join(dir, 'out-finished') })).rejects.toThrow(
      /ran all 2 outer steps; it was not stopped early/,
    );
  });

  it('refuses a run whose recipe differs from the committed recipe of the same name', async () => {
    const runDir = join(dir, 'not-quick');
    await metaTrain({ recipe: recipe('quick', 2), runDir, run: async (i) => runTruncationUnit(i), workers: 0, backend: 'wasm' });
    await expect(writeModelCard({ name: 'x', runDir, outDir: join(dir, 'out1') })).rejects.toThrow(
      /used a recipe named 'quick' that differs from meta-train\/quick\.json/,
    );
    expect(existsSync(join(dir, 'out1'))).toBe(false);
  });

  it('ships the theta with provenance and writes the card from the run and the bench results', async () => {
    const runDir = join(dir, 'run');
    const twinDir = join(dir, 'twin');
    const run = async (i: Parameters<typeof runTruncationUnit>[0]) => runTruncationUnit(i);
    await metaTrain({ recipe: recipe('card-test', 6), runDir, run, workers: 0, backend: 'wasm' });
    await metaTrain({ recipe: recipe('card-test-sp', 6, { mup: false }), runDir: twinDir, run, workers: 0, backend: 'wasm' });
    const benchDir = join(dir, 'bench');
    const task = (name: string, axis: string, factor: number, mine: number, twin: number, adam: number, parametrization: 'mup' | 'sp' = 'mup') =>
      taskResult(
        name,
        [result('adam', adam), result('lamb', adam + 0.1), result('lopt:mulo-test', mine, 'learned'), result('lopt:mulo-test-sp', twin, 'learned')],
        { axis, factor, width: 32 * factor, parametrization },
      );
    const results = await writeBench(
      benchDir,
      'generalization',
      ['adam', 'lamb', 'lopt:mulo-test', 'lopt:mulo-test-sp'],
      [
        task('mlp-a', 'baseline', 1, 0.5, 0.6, 0.7),
        task('mlp-a-sp', 'baseline', 1, 0.65, 0.55, 0.6, 'sp'),
        task('mlp-b', 'width', 32, 0.9, 1.2, 0.8),
        task('mlp-b-sp', 'width', 32, 1.1, 0.85, 0.7, 'sp'),
        task('mlp-c', 'horizon', 25, 0.3, 0.32, 0.35),
      ],
    );
    const out = join(dir, 'checkpoints');
    const written = await writeModelCard({ name: 'mulo-test', runDir, twin: { name: 'mulo-test-sp', runDir: twinDir }, benchDir, outDir: out });
    const { card, checkpoint } = written;
    expect(card).toContain('`meta-train/card-test.json`');
    expect(card).toContain('| outer steps | 6 |');
    // Wins: mlp-a (0.5 < 0.7, 0.8) and mlp-c (0.3 < 0.35, 0.45); not mlp-a-sp (0.65 > 0.6), mlp-b nor mlp-b-sp.
    expect(card).toContain('on 2 of 5 tasks (40%)**; on the tasks of its own parametrization (μP): 2 of 3 (67%).');
    // Goals on its own (μP) tasks: 2 of 3 ≥ 60%; width 0.9 / 0.8 > 1; ×25 horizon 0.3 / 0.35 ≤ 1.2; no
    // divergence; at ×32 not below its twin (0.9 vs 0.85); ×16 is not in the suite, so no row.
    expect(card).toContain('### Goals: 3 of 5 met');
    expect(card).toContain("| lower final training loss than every tuned baseline on ≥ 60% of the suite's μP tasks | 2 of 3 (67%) | yes |");
    expect(card).toContain('| width axis: geometric mean of final loss / best tuned ≤ 1.00× | 1.125× over 1 task | **no** |');
    expect(card).toContain(`| ×25 horizon: final loss / best tuned ≤ 1.20× | ${(0.3 / 0.35).toFixed(3)}× | yes |`);
    expect(card).not.toContain('horizon axis: geometric mean');
    expect(card).toContain('| no divergence on any task | none of 5 | yes |');
    expect(card).toContain('| ×32 width: μP on μP lower than its SP twin on SP | 0.9000 vs 0.8500 | **no** |');
    expect(card).not.toContain('×16 width');
    expect(card).not.toContain('baseline axis: geometric mean');
    expect(card).toMatch(/\| mlp-b \| width \| 32 \| 10 \| 0\.9000 \| adam \| 0\.8000 \| 1\.13× \| no \|/);
    // Per axis: the baseline axis has 2 tasks, 1 win; geometric mean of 0.5/0.7 and 0.65/0.6.
    expect(card).toContain(`| baseline | 2 | 1 | ${Math.sqrt((0.5 / 0.7) * (0.65 / 0.6)).toFixed(2)}× | 0 |`);
    // Twin comparison: each on its own parametrization. ×1: 0.5 vs 0.55 (lower); ×32: 0.9 vs 0.85 (not).
    expect(card).toContain('| 32 | 1 | 0.5000 | 0.5500 | yes | 0.6500 | 0.6000 |');
    expect(card).toContain('| 1024 | 32 | 0.9000 | 0.8500 | no | 1.100 | 1.200 |');
    expect(card).toContain('At the widest width (×32) mulo-test is **not lower**');
    expect(card).toContain(
      `npx lopt bench --suite generalization --optimizers adam,lamb,lopt:mulo-test,lopt:mulo-test-sp --budget 7 --seeds 1 --out ${benchDir}`,
    );
    expect(existsSync(join(out, 'mulo-test-meta-loss.svg'))).toBe(true);
    expect(await readFile(join(out, 'mulo-test-meta-loss.svg'), 'utf8')).toMatch(/^<svg/);
    // The twin ships beside it with its own card and evaluation.
    expect(written.twin?.checkpoint).toBe(join(out, 'mulo-test-sp.lopt'));
    expect(written.twin?.card).toContain('The SP twin of [mulo-test](mulo-test.md)');
    // The twin's goals are its own (SP) tasks' share, 50%: mlp-a-sp (0.55 < 0.6) yes, mlp-b-sp no.
    expect(written.twin?.card).toContain('on 3 of 5 tasks (60%)**; on the tasks of its own parametrization (SP): 1 of 2 (50%).');
    expect(written.twin?.card).toContain("| lower final training loss than every tuned baseline on ≥ 50% of the suite's SP tasks | 1 of 2 (50%) | yes |");
    expect(written.twin?.card).toContain('### Goals: 2 of 2 met');
    // The shipped checkpoint loads by path and carries no training state, only theta and its evaluation.
    const lo = await loadLearnedOptimizer(checkpoint);
    expect(lo.checkpoint.training).toBeUndefined();
    expect((lo.checkpoint.eval as { bench: { lowerFinalLossThanEveryTunedBaseline: number } }).bench.lowerFinalLossThanEveryTunedBaseline).toBe(2);
    expect(lo.checkpoint.provenance.outerStep).toBe(6);
    lo.dispose();
    // A bench without this optimizer is refused before anything is written.
    await writeFile(join(benchDir, 'results.json'), JSON.stringify({ ...results, optimizers: ['adam', 'lamb'] }));
    await expect(writeModelCard({ name: 'mulo-test', runDir, benchDir, outDir: join(dir, 'out2') })).rejects.toThrow(
      /has no results for lopt:mulo-test \(it has adam, lamb\)/,
    );
    expect(existsSync(join(dir, 'out2', 'mulo-test.lopt'))).toBe(false);
  });
  it('a run continued over machines: history and every segment from its continuation file, and a selected snapshot shipped', async () => {
    const run = async (i: Parameters<typeof runTruncationUnit>[0]) => runTruncationUnit(i);
    const file = join(dir, 'continued.lopt');
    const r = recipe('card-continued', 6);
    // Two machines: the first stops after 4 steps (its run folder is gone), the second finishes.
    await metaTrain({ recipe: r, runDir: join(dir, 'machine-a'), run, workers: 0, backend: 'wasm', continuation: file, stopAfter: 4, snapshotEvery: 2 });
    const runDir = join(dir, 'machine-b');
    await metaTrain({ recipe: r, runDir, run, workers: 0, backend: 'wasm', continuation: file, snapshotEvery: 2 });
    const lastFolderSteps = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').length;
    expect(lastFolderSteps).toBe(2); // the last folder saw steps 5 and 6 only: the card needs the continuation's history
    const snapshot = join(dir, 'continued.snapshots', 'step-00000004.lopt');
    const out = join(dir, 'out-continued');
    const { card, checkpoint } = await writeModelCard({ name: 'continued-test', runDir, continuation: file, theta: snapshot, outDir: out });
    expect(card).toMatch(/\| wall time \(sum of outer-step times\) \| \d+ min, in 2 segments \(below\) \|/);
    expect(card).toMatch(/\| 1 \| [0-9a-f]{7,12}|unknown \| 0 → 4 \|/);
    expect(card).toMatch(/\| 2 \| ([0-9a-f]{7,12}|unknown) \| 4 → 6 \| \d+ min \| wasm \|/);
    expect(card).toContain('| shipped theta | outer step 4 (chosen by model selection, `lopt select`) |');
    expect(card).toContain(`--continuation ${file}`);
    const shipped = await loadLearnedOptimizer(checkpoint);
    const chosen = await loadLearnedOptimizer(snapshot);
    expect(Array.from(shipped.theta['mlp/w0']!.dataSync())).toEqual(Array.from(chosen.theta['mlp/w0']!.dataSync()));
    // The first steps recorded in the checkpoint are the continuation's, from step 1.
    const evalSection = (shipped.checkpoint.eval as { metaTraining: { firstSteps: { step: number }[] } }).metaTraining;
    expect(evalSection.firstSteps.map((f) => f.step)).toEqual([1, 2, 3]);
    await expect(writeModelCard({ name: 'x', runDir: join(dir, 'machine-a'), continuation: join(dir, 'nope.lopt'), outDir: out })).rejects.toThrow(
      /does not exist/,
    );
    shipped.dispose();
    chosen.dispose();

    // On a fresh machine only the committed files remain: the continuation file, its recipe, the
    // snapshots and the model selection's results.
    const recipeFile = join(dir, 'card-continued.json');
    await writeFile(recipeFile, JSON.stringify(r));
    const snapshots = [2, 4].map((n) => join(dir, 'continued.snapshots', `step-0000000${n}.lopt`));
    const selectionDir = join(dir, 'select');
    const selTask = (name: string, adam: number, mine: [number, number]) =>
      taskResult(name, [result('adam', adam), result(`lopt:${snapshots[0]}`, mine[0], 'learned'), result(`lopt:${snapshots[1]}`, mine[1], 'learned')]);
    // Step 2: ratios 1.2 and 1.5; step 4: 0.9 and 1.0, the lower geometric mean.
    await writeBench(
      selectionDir,
      'meta-validation',
      ['adam', ...snapshots.map((c) => `lopt:${c}`)],
      [selTask('val-a', 1, [1.2, 0.9]), selTask('val-b', 2, [3, 2])],
    );
    const notes = join(dir, 'notes.md');
    await writeFile(notes, 'The next lever is *not* more steps.\n');
    const fresh = join(dir, 'out-fresh');
    const base = { name: 'continued-test', recipe: recipeFile, continuation: file, selectionDir, outDir: fresh };
    // The shipped theta must be the one the selection chose.
    await expect(writeModelCard({ ...base, theta: snapshots[0]! })).rejects.toThrow(/selected .*step-00000004\.lopt; ship that theta/);
    const written = await writeModelCard({ ...base, theta: snapshots[1]!, notes });
    expect(written.card).toContain('## Model selection');
    expect(written.card).toContain('| **step-00000004.lopt** | 4 | **0.949** | 0.900 | 1.000 |');
    expect(written.card).toContain(`| step-00000002.lopt | 2 | ${Math.sqrt(1.2 * 1.5).toFixed(3)} | 1.200 | 1.500 |`);
    expect(written.card).toContain('## Notes\n\nThe next lever is *not* more steps.');
    expect(written.card).toContain(`--recipe meta-train/card-continued.json --continuation ${file} --theta ${snapshots[1]} --selection ${selectionDir}`);
    expect(written.card).toContain(`npx lopt select --suite meta-validation --seeds 1 --budget 7 --out ${selectionDir} ${join(dir, 'continued.snapshots')}`);
    // Neither a run folder nor a recipe: refused, naming what is needed. Notes with HTML: refused.
    await expect(writeModelCard({ name: 'x', continuation: file, outDir: fresh })).rejects.toThrow(
      /needs its run folder \(--run\), or its continuation file and recipe/,
    );
    await writeFile(notes, 'an <img src=x onerror=alert(1)> image');
    await expect(writeModelCard({ ...base, theta: snapshots[1]!, notes, outDir: join(dir, 'out-html') })).rejects.toThrow(/holds HTML/);
    // A terminal escape is refused; CRLF line breaks and tabs are text.
    await writeFile(notes, 'colours \u001b[31mred');
    await expect(writeModelCard({ ...base, theta: snapshots[1]!, notes, outDir: join(dir, 'out-esc') })).rejects.toThrow(/control characters/);
    await writeFile(notes, 'line one\r\n\tline two\r\n');
    await writeModelCard({ ...base, theta: snapshots[1]!, notes, outDir: join(dir, 'out-crlf') });
    expect(await readFile(join(dir, 'out-crlf', `${base.name}.md`), 'utf8')).toContain('line one');
    expect(existsSync(join(dir, 'out-html'))).toBe(false);
  });
});
