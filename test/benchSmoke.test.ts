// `lopt bench` on the smoke suite through the worker pool: the results' structure, tuned Adam
// against untuned SGD, resuming from stored runs, the report files, and bad input refused up front.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import type { BenchRunInput, BenchRunOutput } from '../src/evaluate/benchRun.js';
import { writeReport } from '../src/evaluate/report/writeReport.js';
import type { BenchResults } from '../src/evaluate/results.js';
import { DEFAULT_BENCH_OPTIMIZERS, MAX_GRID_EXTENSIONS, runBench, type BenchEvent } from '../src/evaluate/runBench.js';
import { createUnitPool, type UnitPool } from '../src/parallel/unitPool.js';
import { UNITS_MODULE, type Units } from '../src/units.js';
import { loadSuite, shippedSuitePath } from '../tasks/suites.js';

let dir: string;
let pool: UnitPool<Units>;
const run = (input: BenchRunInput) => pool.run('bench-run', input);
const UNTUNED = 'sgd@0.01';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-bench-'));
  pool = await createUnitPool<Units>({ workers: 2, unitsModule: UNITS_MODULE, backend: 'wasm', onWarning: () => undefined });
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

describe('lopt bench on the smoke suite', () => {
  const suite = loadSuite(shippedSuitePath('smoke'));
  let results: BenchResults;
  const events: BenchEvent[] = [];

  it('tunes every baseline on the same grid and writes a complete, consistent results file', async () => {
    results = await runBench({
      suite,
      optimizers: [...DEFAULT_BENCH_OPTIMIZERS, UNTUNED],
      budget: 7,
      seeds: 1,
      outDir: join(dir, 'smoke'),
      backend: 'wasm',
      run,
      onEvent: (e) => events.push(e),
    });
    expect(results.optimizers).toEqual([...DEFAULT_BENCH_OPTIMIZERS, UNTUNED]);
    expect(results.tasks.map((t) => t.task)).toEqual(suite.tasks.map((t) => t.task));
    for (const t of results.tasks) {
      expect(t.results.map((r) => r.optimizer)).toEqual(results.optimizers);
      expect(t.adamEnvelope.length).toBeGreaterThan(10);
      for (const r of t.results) {
        const tuned = r.optimizer !== UNTUNED;
        if (!tuned) expect(r.grid.length).toBe(1);
        if (tuned) {
          // 7 points half a decade apart, extended two at a time past an end that held the optimum.
          expect((r.grid.length - 7) % 2).toBe(0);
          expect(r.grid.length).toBeLessThanOrEqual(7 + 2 * MAX_GRID_EXTENSIONS);
          for (let g = 1; g < r.grid.length; g++) expect(r.grid[g]!.lr / r.grid[g - 1]!.lr).toBeCloseTo(Math.sqrt(10), 3);
          const at = r.grid.findIndex((p) => p.lr === r.selectedLr);
          if (!r.diverged && (at === 0 || at === r.grid.length - 1)) expect(r.grid.length).toBe(7 + 2 * MAX_GRID_EXTENSIONS);
        }
        expect(r.curve.at(-1)!.step).toBe(t.steps);
        if (r.diverged) {
          expect(r.finalTrainLoss).toBeNull();
          expect(r.divergedAt).not.toBeNull();
        } else {
          expect(r.grid.map((p) => p.lr)).toContain(r.selectedLr);
          // Selected on inner-valid: no other finite grid point is better there.
          const chosen = r.grid.find((p) => p.lr === r.selectedLr)!;
          for (const p of r.grid) if (p.innerValidLoss !== null) expect(chosen.innerValidLoss!).toBeLessThanOrEqual(p.innerValidLoss);
          expect(Number.isFinite(r.finalTrainLoss)).toBe(true);
          expect(r.bestTrainLoss!).toBeLessThanOrEqual(r.finalTrainLoss! + 1e-12);
          expect(r.speedupOverAdam).not.toBeNull();
        }
        expect(
          t.family === 'mlp' || t.family === 'conv' || t.family === 'transformer' || t.family === 'logreg'
            ? r.diverged || r.testAccuracy !== null
            : r.testAccuracy === null,
        ).toBe(true);
      }
      expect(t.results.find((r) => r.optimizer === 'adam')!.speedupOverAdam).toBe(1);
      expect(t.results.map((r) => r.tuned)).toEqual(results.optimizers.map((name) => name !== UNTUNED));
    }
    expect(existsSync(join(dir, 'smoke', 'results.json'))).toBe(true);
    expect(events.filter((e) => e.type === 'run-done').length).toBeGreaterThanOrEqual(8 * 7);
    // The suite's 56+ runs take ~60 s on 2 quiet cores and over 120 s (the default limit) when
    // the cores are shared with other jobs.
  }, 360_000);

  it('tuned Adam beats untuned SGD on every smoke task', () => {
    for (const t of results.tasks) {
      const adam = t.results.find((r) => r.optimizer === 'adam')!;
      const sgd = t.results.find((r) => r.optimizer === UNTUNED)!;
      expect(adam.diverged, t.task).toBe(false);
      if (!sgd.diverged) expect(adam.finalTrainLoss!, t.task).toBeLessThan(sgd.finalTrainLoss!);
    }
  });

  it('resumes: a second bench over the same folder reuses every stored run', async () => {
    const again: BenchEvent[] = [];
    let calls = 0;
    const second = await runBench({
      suite,
      optimizers: [...DEFAULT_BENCH_OPTIMIZERS, UNTUNED],
      budget: 7,
      seeds: 1,
      outDir: join(dir, 'smoke'),
      backend: 'wasm',
      run: async (input) => {
        calls += 1;
        return run(input);
      },
      onEvent: (e) => again.push(e),
    });
    expect(calls).toBe(0);
    expect(again[0]).toEqual({ type: 'bench-start', runs: 56, done: 56 });
    // Stored grid extensions are counted as done (cached), so the progress ends complete.
    const last = again.filter((e) => e.type === 'run-done').at(-1);
    if (last && last.type === 'run-done') expect(last.done).toBe(last.runs);
    expect(again.filter((e) => e.type === 'run-done').every((e) => e.type === 'run-done' && e.cached)).toBe(true);
    const strip = (r: BenchResults) => ({ ...r, createdAt: '' });
    expect(strip(second)).toEqual(strip(results));
  });

  it('writes the report: markdown, one SVG per plot and the HTML page', async () => {
    const report = await writeReport(results, join(dir, 'smoke'));
    expect(report.markdown).toContain('mlp-mnist8-w32-d1-relu-b128-mup');
    expect(existsSync(join(dir, 'smoke', 'report.html'))).toBe(true);
    expect(existsSync(join(dir, 'smoke', 'summary.md'))).toBe(true);
    expect(report.svgs.length).toBeGreaterThanOrEqual(suite.tasks.length + 1);
  });
});

describe('bad input is refused before any run', () => {
  const suite = loadSuite(shippedSuitePath('smoke'));
  const never = async (): Promise<BenchRunOutput> => {
    throw new Error('no run should start');
  };
  const bench = (optimizers: string[]) => runBench({ suite, optimizers, budget: 3, seeds: 1, outDir: join(dir, 'bad'), backend: 'wasm', run: never });

  it('unknown optimizers, bad untuned forms, missing or corrupt checkpoints', async () => {
    await expect(bench(['adam', 'adagrad'])).rejects.toThrow(/unknown optimizer 'adagrad'; allowed: sgd, .*<name>@<lr>/);
    await expect(bench(['sgd@-1'])).rejects.toThrow(/unknown optimizer 'sgd@-1'/);
    await expect(bench(['lopt:no-such-checkpoint'])).rejects.toThrow(/no checkpoint file 'no-such-checkpoint'/);
    const corrupt = join(dir, 'corrupt.lopt');
    await writeFile(corrupt, 'not msgpack');
    await expect(bench([`lopt:${corrupt}`])).rejects.toThrow(/corrupt\.lopt/);
  });

  it('a suite that fails its schema', async () => {
    const path = join(dir, 'suite.json');
    await writeFile(path, JSON.stringify({ name: 's', description: '', tasks: [{ task: 'mlp-mnist8-w32-d1', steps: -5 }] }));
    expect(() => loadSuite(path)).toThrow(/tasks\.0\.steps/);
    await writeFile(path, JSON.stringify({ name: 's', description: '', tasks: [{ task: 'mlp-nope', steps: 5 }] }));
    expect(() => loadSuite(path)).toThrow(/mlp-nope/);
  });
});
