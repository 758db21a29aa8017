// `lopt bench` and `lopt eval`: the fair comparison of src/evaluate, run in the worker pool, with
// live progress (or one line per run off a terminal) and the report at the end.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import asciichart from 'asciichart';
import { initBackend, type BackendName } from '../backend/select.js';
import type { BenchRunInput, BenchRunOutput } from '../evaluate/benchRun.js';
import { formatLr } from '../evaluate/report/format.js';
import { writeReport } from '../evaluate/report/writeReport.js';
import type { BenchResults } from '../evaluate/results.js';
import { DEFAULT_BENCH_OPTIMIZERS, runBench } from '../evaluate/runBench.js';
import { selectModel, type Selection } from '../evaluate/selectModel.js';
import { benchProgress } from './bench/progressReporter.js';
import { createUnitPool } from '../parallel/unitPool.js';
import { UNITS_MODULE, type Units } from '../units.js';
import { loadSuite, parseSuite, SHIPPED_SUITES, shippedSuitePath, type Suite } from '../../tasks/suites.js';
import { taskFromName } from '../../tasks/registry.js';
import { printable, printableMessage } from '../text/printable.js';

export interface BenchCommandOptions {
  suite: string;
  /** Default: the suite's `optimizers`, else DEFAULT_BENCH_OPTIMIZERS. */
  optimizers?: string[];
  budget: number;
  seeds: number;
  steps?: number;
  workers?: number;
  out?: string;
  backend?: BackendName | 'auto';
}

function suiteFrom(nameOrPath: string): Suite {
  if (existsSync(nameOrPath)) return loadSuite(nameOrPath);
  if (/^[A-Za-z0-9_-]+$/.test(nameOrPath)) return loadSuite(shippedSuitePath(nameOrPath));
  throw new Error(`bench: no suite file '${nameOrPath}' (give a path, or a shipped suite: ${SHIPPED_SUITES.join(', ')})`);
}

async function withPool<T>(workers: number, backend: string, fn: (run: (input: BenchRunInput) => Promise<BenchRunOutput>) => Promise<T>): Promise<T> {
  const pool = await createUnitPool<Units>({
    workers,
    unitsModule: UNITS_MODULE,
    backend: backend as BackendName,
    onWarning: (m) => console.error(printableMessage(`lopt: ${m}`)),
  });
  try {
    return await fn((input) => pool.run('bench-run', input));
  } finally {
    await pool.close();
  }
}

export async function benchCommand(o: BenchCommandOptions): Promise<BenchResults> {
  const suite = suiteFrom(o.suite);
  const optimizers = o.optimizers ?? suite.optimizers ?? DEFAULT_BENCH_OPTIMIZERS;
  const backend = await initBackend(o.backend ? { backend: o.backend, log: () => {} } : { log: () => {} });
  const outDir = o.out ?? join('bench-results', suite.name);
  const workers = o.workers ?? Math.min(availableParallelism(), 2);
  console.log(
    `lopt bench: suite ${suite.name} (${suite.tasks.length} tasks), ${optimizers.join(', ')}; budget ${o.budget} learning rates, ${o.seeds} seed(s), ${workers} worker(s), backend ${backend}; results in ${outDir}`,
  );
  const progress = benchProgress({ stdout: process.stdout, env: process.env, write: (line) => console.log(line) });
  let results: BenchResults;
  try {
    results = await withPool(workers, backend, (run) =>
      runBench({
        suite,
        optimizers,
        budget: o.budget,
        seeds: o.seeds,
        ...(o.steps !== undefined ? { steps: o.steps } : {}),
        outDir,
        backend,
        parallelism: workers,
        run,
        onEvent: progress.listener,
      }),
    );
  } finally {
    await progress.close();
  }
  const report = await writeReport(results, outDir);
  console.log(`\n${report.markdown}`);
  console.log(`report: ${join(outDir, 'report.html')} · summary: ${join(outDir, 'summary.md')} · results: ${join(outDir, 'results.json')}`);
  return results;
}

export interface EvalCommandOptions {
  checkpoint: string;
  task: string;
  steps: number;
  seeds: number;
  budget: number;
  workers?: number;
  out?: string;
  backend?: BackendName | 'auto';
}

/** One task: the learned optimizer (one trial) against tuned Adam, as a table and a terminal chart. */
export async function evalCommand(o: EvalCommandOptions): Promise<void> {
  const task = taskFromName(o.task);
  const suite = parseSuite({ name: `eval-${task.meta.name}`, description: 'lopt eval', tasks: [{ task: task.meta.name, steps: o.steps }] }, 'lopt eval');
  const backend = await initBackend(o.backend ? { backend: o.backend, log: () => {} } : { log: () => {} });
  const outDir = o.out ?? (await mkdtemp(join(tmpdir(), 'lopt-eval-')));
  const learned = `lopt:${o.checkpoint}`;
  const results = await withPool(o.workers ?? 2, backend, (run) =>
    runBench({
      suite,
      optimizers: ['adam', learned],
      budget: o.budget,
      seeds: o.seeds,
      outDir,
      backend,
      parallelism: o.workers ?? 2,
      run,
    }),
  );
  const t = results.tasks[0]!;
  const f = (x: number | null, digits = 4) => (x === null ? 'diverged' : x.toPrecision(digits));
  console.log(
    `${task.meta.name}, ${o.steps} steps, ${o.seeds} seed(s); Adam tuned over ${o.budget} learning rates on inner-valid, the learned optimizer one trial`,
  );
  console.log(
    `${'optimizer'.padEnd(28)} ${'lr'.padStart(8)} ${'final'.padStart(9)} ${'best'.padStart(9)} ${'test'.padStart(9)} ${'acc'.padStart(7)} ${'vs Adam'.padStart(8)}`,
  );
  for (const r of t.results) {
    const speed = r.speedupOverAdam === null ? '—' : `${r.speedupIsLowerBound ? '≥' : ''}${r.speedupOverAdam.toFixed(2)}×`;
    console.log(
      `${r.optimizer.padEnd(28)} ${(r.selectedLr === null ? '—' : formatLr(r.selectedLr)).padStart(8)} ${f(r.finalTrainLoss).padStart(9)} ${f(r.bestTrainLoss).padStart(9)} ${f(r.testLoss).padStart(9)} ${(r.testAccuracy === null ? '—' : r.testAccuracy.toFixed(3)).padStart(7)} ${speed.padStart(8)}`,
    );
  }
  const series = t.results.map((r) => r.curve.map((p) => p.loss ?? NaN).filter((x) => Number.isFinite(x)));
  if (series.every((s) => s.length > 1)) {
    const width = 70;
    const resample = (s: number[]) => Array.from({ length: width }, (_, i) => s[Math.floor((i * (s.length - 1)) / (width - 1))]!);
    console.log(
      `\ntraining loss (smoothed), top to bottom at the start: ${t.results.map((r, i) => `${process.stdout.isTTY ? `${['blue', 'green', 'red'][i % 3]} = ` : `series ${i + 1} = `}${r.optimizer}`).join(', ')}`,
    );
    const colors = process.stdout.isTTY ? { colors: [asciichart.blue, asciichart.green, asciichart.red] } : {};
    console.log(asciichart.plot(series.map(resample), { height: 12, ...colors }));
  }
}

export interface SelectCommandOptions {
  /** Checkpoint files, or folders whose *.lopt files are all candidates (in name order). */
  candidates: string[];
  suite: string;
  seeds: number;
  budget: number;
  workers?: number;
  out?: string;
  backend?: BackendName | 'auto';
}

/** Candidate checkpoint paths: files as given, folders expanded to their *.lopt files in name order. */
export function candidatePaths(items: string[]): string[] {
  const out: string[] = [];
  for (const item of items) {
    if (!existsSync(item)) throw new Error(`select: no file or folder '${item}'`);
    if (statSync(item).isDirectory()) {
      const files = readdirSync(item)
        .filter((f) => f.endsWith('.lopt'))
        .sort();
      if (files.length === 0) throw new Error(`select: ${item} holds no .lopt file`);
      out.push(...files.map((f) => join(item, f)));
    } else out.push(item);
  }
  return out;
}

/** `lopt select`: each candidate one trial on a meta-validation suite beside tuned Adam; prints the scores and the selection. */
export async function selectCommand(o: SelectCommandOptions): Promise<Selection> {
  const candidates = candidatePaths(o.candidates);
  const suite = suiteFrom(o.suite);
  const backend = await initBackend(o.backend ? { backend: o.backend, log: () => {} } : { log: () => {} });
  const outDir = o.out ?? join('bench-results', `select-${suite.name}`);
  const workers = o.workers ?? Math.min(availableParallelism(), 2);
  console.log(
    `lopt select: ${candidates.length} candidates on ${suite.name} (${suite.tasks.length} tasks) beside Adam tuned over ${o.budget} learning rates; results in ${outDir}`,
  );
  const progress = benchProgress({ stdout: process.stdout, env: process.env, write: (line) => console.log(line) });
  let selection: Selection;
  try {
    selection = await withPool(workers, backend, (run) =>
      selectModel({ suite, candidates, budget: o.budget, seeds: o.seeds, outDir, backend, parallelism: workers, run, onEvent: progress.listener }),
    );
  } finally {
    await progress.close();
  }
  console.log(`\n${'candidate'.padEnd(48)} ${'score'.padStart(8)}  final loss / tuned Adam per task (${suite.tasks.map((t) => t.task).join(', ')})`);
  for (const s of selection.scores) {
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'diverged');
    console.log(`${printable(s.candidate, 200).padEnd(48)} ${f(s.score).padStart(8)}  ${s.ratios.map(f).join(' ')}`);
  }
  console.log(`selected: ${printable(selection.selected, 200)} (lowest geometric mean of final training loss / tuned Adam's)`);
  return selection;
}
