// `lopt bench`: a suite × optimizers, every baseline tuned with the same budget, the learned
// optimizers with one trial; runs go through the unit pool, each stored as it finishes so an
// interrupted bench resumes where it stopped. Emits progress events; knows nothing of the terminal.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadLearnedOptimizer } from '../lopt/io.js';
import { isOptimizerName, OPTIMIZERS, READS_LAYER_STATISTICS, type OptimizerName } from '../optim/registry.js';
import { taskFromName } from '../../tasks/registry.js';
import type { Suite } from '../../tasks/suites.js';
import { GRID_CENTER, learningRateGrid } from './baselines.js';
import type { BenchOptimizerSpec, BenchRunInput, BenchRunOutput } from './benchRun.js';
import type { BenchResults, TaskResult } from './results.js';
import { concatGrids, envelopePoints, lowerEnvelope, selectedIndex, summarizeRun } from './summarize.js';

/**
 * When a tuned baseline's selected learning rate is at an end of its grid, the grid is extended
 * by two more half-decades past that end, at most this many times (the same rule for every
 * baseline), so that a reported optimum is never an artefact of where the grid stopped.
 */
export const MAX_GRID_EXTENSIONS = 3;

export interface BenchOptions {
  suite: Suite;
  /** 'adam', 'nesterov', …, or 'lopt:<checkpoint path or shipped name>'. Adam is always run (speedups). */
  optimizers: string[];
  /** Grid points per baseline, half a decade apart (default 7). */
  budget: number;
  seeds: number;
  /** Overrides every suite entry's steps. */
  steps?: number;
  outDir: string;
  backend: string;
  evalBatches?: number;
  run: (input: BenchRunInput) => Promise<BenchRunOutput>;
  /** Units handed to `run` at once (the pool's workers; default: all), so a run is reported started when it really starts. */
  parallelism?: number;
  onEvent?: (e: BenchEvent) => void;
}

/** At most `limit` calls of `fn` in flight; the others wait their turn in order. */
function limited<A, R>(limit: number, fn: (a: A) => Promise<R>): (a: A) => Promise<R> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (a: A) => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await fn(a);
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}

export type BenchEvent =
  | { type: 'bench-start'; runs: number; done: number }
  | { type: 'run-start'; task: string; optimizer: string; index: number }
  | { type: 'run-done'; task: string; optimizer: string; index: number; seconds: number; cached: boolean; done: number; runs: number; summary: string };

export const DEFAULT_BENCH_OPTIMIZERS = ['adam', 'nesterov', 'lars', 'lamb', 'tvlars', 'muadam'];

/** Parses and checks the optimizer list before any run: unknown names and bad checkpoints fail here. */
export async function resolveOptimizers(list: string[], budget: number): Promise<BenchOptimizerSpec[]> {
  const names = list.includes('adam') ? list : ['adam', ...list];
  const specs: BenchOptimizerSpec[] = [];
  for (const name of names) {
    if (name.startsWith('lopt:')) {
      const checkpoint = name.slice(5);
      if (checkpoint === '') throw new Error(`bench: 'lopt:' needs a checkpoint path or shipped name, e.g. lopt:mulo-mnist`);
      const loaded = await loadLearnedOptimizer(checkpoint); // validates the file now
      loaded.dispose();
      specs.push({ kind: 'learned', name: checkpoint, checkpoint });
    } else if (isOptimizerName(name)) {
      specs.push({ kind: 'baseline', name, optimizer: name, lrs: learningRateGrid(GRID_CENTER[name as OptimizerName], budget) });
    } else {
      // `name@lr`: one untuned learning rate (a reference point, e.g. sgd@0.01).
      const fixed = /^([a-z]+)@([0-9.]+(?:e[-+]?\d+)?)$/.exec(name);
      const lr = fixed ? Number(fixed[2]) : NaN;
      if (fixed && isOptimizerName(fixed[1]!) && Number.isFinite(lr) && lr > 0) {
        specs.push({ kind: 'baseline', name, optimizer: fixed[1]!, lrs: [lr] });
      } else {
        throw new Error(
          `bench: unknown optimizer '${name}'; allowed: ${Object.keys(OPTIMIZERS).join(', ')} (tuned), <name>@<lr> (one untuned learning rate, e.g. sgd@0.01), or lopt:<checkpoint>`,
        );
      }
    }
  }
  if (new Set(names).size !== names.length) throw new Error(`bench: optimizer list repeats a name: ${names.join(',')}`);
  return specs;
}

/** Every optimizer an entry carries learning rates for must be tuned on its base entry in this bench. */
function checkScaledEntries(suite: Suite, specs: BenchOptimizerSpec[]): void {
  for (const entry of suite.tasks) {
    for (const name of entry.lrScaledFrom?.optimizers ?? []) {
      const spec = specs.find((s) => s.name === name);
      if (spec === undefined || spec.kind !== 'baseline' || spec.lrs.length < 2) {
        const tuned = specs.filter((s) => s.kind === 'baseline' && s.lrs.length > 1).map((s) => s.name);
        throw new Error(
          `bench: suite entry ${entry.task} carries ${name}'s learning rate from ${entry.lrScaledFrom!.task}, so ${name} must be tuned in this bench: add it to --optimizers (tuned now: ${tuned.join(', ')})`,
        );
      }
    }
  }
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
}

/** Where one finished run is kept (the resume point). */
function runFile(outDir: string, task: string, steps: number, spec: BenchOptimizerSpec, seeds: number): string {
  const opt = spec.kind === 'baseline' ? `${spec.name}-${spec.lrs.length}lrs-${spec.lrs[0]}` : `lopt-${basename(spec.checkpoint)}`;
  return join(outDir, 'runs', `${safeName(task)}-${steps}steps-${safeName(opt)}-${seeds}seeds.json`);
}

interface StoredRun {
  input: BenchRunInput;
  output: {
    losses: number[];
    innerValid: number[];
    testLoss: number[];
    testAccuracy: number[] | null;
    testMetrics?: Record<string, number[]>;
    seconds: number;
  };
}

const toStored = (input: BenchRunInput, o: BenchRunOutput): StoredRun => ({
  input,
  output: {
    losses: Array.from(o.losses, (x) => (Number.isFinite(x) ? x : NaN)),
    innerValid: Array.from(o.innerValid),
    testLoss: Array.from(o.testLoss),
    testAccuracy: o.testAccuracy ? Array.from(o.testAccuracy) : null,
    ...(o.testMetrics ? { testMetrics: Object.fromEntries(Object.entries(o.testMetrics).map(([k, v]) => [k, Array.from(v)])) } : {}),
    seconds: o.seconds,
  },
});

// JSON has no NaN: non-finite values are stored as null and read back as NaN.
const encode = (run: StoredRun) => JSON.stringify(run, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
const nums = (xs: (number | null)[]) => Float32Array.from(xs, (x) => (x === null ? NaN : x));

async function readStored(path: string, input: BenchRunInput): Promise<BenchRunOutput | null> {
  if (!existsSync(path)) return null;
  try {
    const run = JSON.parse(await readFile(path, 'utf8')) as {
      input: unknown;
      output: {
        losses: (number | null)[];
        innerValid: (number | null)[];
        testLoss: (number | null)[];
        testAccuracy: (number | null)[] | null;
        testMetrics?: Record<string, (number | null)[]>;
        seconds: number;
      };
    };
    if (JSON.stringify(run.input) !== JSON.stringify(input)) return null; // another configuration: run again
    return {
      losses: nums(run.output.losses),
      innerValid: nums(run.output.innerValid),
      testLoss: nums(run.output.testLoss),
      testAccuracy: run.output.testAccuracy ? nums(run.output.testAccuracy) : null,
      ...(run.output.testMetrics ? { testMetrics: Object.fromEntries(Object.entries(run.output.testMetrics).map(([k, v]) => [k, nums(v)])) } : {}),
      seconds: run.output.seconds,
    };
  } catch {
    return null; // a torn or foreign file: run again
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, path);
}

function lastLossText(out: BenchRunOutput): string {
  const P = out.innerValid.length;
  const last = Array.from(out.losses.subarray(out.losses.length - P)).filter((x) => Number.isFinite(x));
  return last.length > 0 ? `last-step loss (best member) ${Math.min(...last).toPrecision(4)}` : 'diverged';
}

export async function runBench(o: BenchOptions): Promise<BenchResults> {
  const emit = o.onEvent ?? (() => undefined);
  const specs = await resolveOptimizers(o.optimizers, o.budget);
  const seeds = Array.from({ length: o.seeds }, (_, i) => i + 1);
  const entries = o.suite.tasks.map((entry) => ({ ...entry, steps: o.steps ?? entry.steps, task: taskFromName(entry.task) }));
  checkScaledEntries(o.suite, specs);
  for (const spec of specs) {
    if (spec.kind !== 'baseline' || !READS_LAYER_STATISTICS.has(spec.optimizer as OptimizerName)) continue;
    const without = entries.find((e) => e.task.lossGradsAndStatistics === undefined || !e.task.layers?.length);
    if (without) {
      throw new Error(
        `bench: ${spec.name} needs each layer's inputs and output gradients, which task '${without.task.meta.name}' does not report (mlp, conv, transformer and mlm tasks do); leave it out of the suite or the optimizer list`,
      );
    }
  }
  await mkdir(join(o.outDir, 'runs'), { recursive: true });

  const plan = entries.flatMap((entry, ti) =>
    specs.map((spec) => {
      const input: BenchRunInput = {
        task: entry.task.meta.name,
        steps: entry.steps,
        optimizer: spec,
        seeds,
        evalBatches: o.evalBatches ?? 4,
        ...(entry.schedule ? { schedule: entry.schedule } : {}),
      };
      return { ti, spec, input, path: runFile(o.outDir, entry.task.meta.name, entry.steps, spec, o.seeds) };
    }),
  );
  const label = (spec: BenchOptimizerSpec) => (spec.kind === 'baseline' ? spec.name : `lopt:${spec.name}`);
  const stored: (BenchRunOutput | null)[] = await Promise.all(plan.map((p) => readStored(p.path, p.input)));
  let runs = plan.length;
  let done = stored.filter((x) => x !== null).length;
  emit({ type: 'bench-start', runs, done });

  const runLimited = limited(Math.max(1, o.parallelism ?? Number.POSITIVE_INFINITY), async ({ input, index }: { input: BenchRunInput; index: number }) => {
    emit({ type: 'run-start', task: input.task, optimizer: label(input.optimizer), index });
    return o.run(input);
  });

  /** One stored-or-run unit. */
  const unit = async (input: BenchRunInput, path: string, cachedOutput: BenchRunOutput | null, index: number): Promise<BenchRunOutput> => {
    if (cachedOutput !== null) return cachedOutput;
    // A grid extension stored by an earlier, interrupted bench: counted, not run again.
    const cached = await readStored(path, input);
    const out = cached ?? (await runLimited({ input, index }));
    if (cached === null) await writeAtomic(path, encode(toStored(input, out)));
    done += 1;
    emit({
      type: 'run-done',
      task: input.task,
      optimizer: label(input.optimizer),
      index,
      seconds: out.seconds,
      cached: cached !== null,
      done,
      runs,
      summary: lastLossText(out),
    });
    return out;
  };

  // Per (task, optimizer): the grid, extended while the selection sits at one of its ends.
  const finals = await Promise.all(
    plan.map(async (p, i) => {
      let spec = p.spec;
      let out = await unit(p.input, p.path, stored[i]!, i);
      if (spec.kind !== 'baseline' || spec.lrs.length < 2) return { spec, out };
      const T = p.input.steps;
      for (let ext = 0; ext < MAX_GRID_EXTENSIONS; ext++) {
        const G = spec.lrs.length;
        const sel = selectedIndex(out, G, o.seeds, T);
        if (sel > 0 && sel < G - 1) break;
        // At the low end, or everything diverged: smaller rates; at the high end: larger.
        const down = sel <= 0;
        const edge: number = down ? spec.lrs[0]! : spec.lrs[G - 1]!;
        const more: number[] = (down ? [edge / 10, edge / Math.sqrt(10)] : [edge * Math.sqrt(10), edge * 10]).map((x) => Number(x.toPrecision(6)));
        const extSpec: BenchOptimizerSpec = { ...spec, lrs: more };
        const extInput: BenchRunInput = { ...p.input, optimizer: extSpec };
        runs += 1;
        const extOut = await unit(extInput, runFile(o.outDir, p.input.task, T, extSpec, o.seeds), null, plan.length + i * MAX_GRID_EXTENSIONS + ext);
        out = down ? concatGrids(extOut, 2, out, G, o.seeds, T) : concatGrids(out, G, extOut, 2, o.seeds, T);
        spec = { ...spec, lrs: down ? [...more, ...spec.lrs] : [...spec.lrs, ...more] };
      }
      return { spec, out };
    }),
  );

  // Learning rates carried from a smaller batch (the LAMB paper's rule): one run each, after the
  // base entry's tuning has selected its rate.
  const scaled: { ti: number; spec: BenchOptimizerSpec; out: BenchRunOutput }[] = [];
  for (const [ti, entry] of entries.entries()) {
    const from = entry.lrScaledFrom;
    if (from === undefined) continue;
    const bi = o.suite.tasks.findIndex((t) => t.task === from.task);
    const base = entries[bi]!;
    const ratio = entry.task.meta.batchSize / base.task.meta.batchSize;
    for (const name of from.optimizers) {
      const at = plan.findIndex((p) => p.ti === bi && p.spec.name === name);
      const tuned = finals[at]!;
      if (tuned.spec.kind !== 'baseline') continue;
      const sel = selectedIndex(tuned.out, tuned.spec.lrs.length, o.seeds, base.steps);
      if (sel < 0) continue; // every rate diverged on the base entry: nothing to carry
      const lr = Number((tuned.spec.lrs[sel]! * (from.rule === 'sqrt' ? Math.sqrt(ratio) : ratio)).toPrecision(6));
      const spec: BenchOptimizerSpec = {
        kind: 'baseline',
        name: `${name} (${from.rule}-scaled from b${base.task.meta.batchSize})`,
        optimizer: name,
        lrs: [lr],
      };
      const input: BenchRunInput = { ...plan.find((p) => p.ti === ti)!.input, optimizer: spec };
      runs += 1;
      const out = await unit(input, runFile(o.outDir, input.task, input.steps, spec, o.seeds), null, plan.length * (1 + MAX_GRID_EXTENSIONS) + scaled.length);
      scaled.push({ ti, spec, out });
    }
  }

  const tasks: TaskResult[] = entries.map((entry, ti) => {
    const taskRuns = [...plan.map((p, i) => ({ p, ...finals[i]! })).filter(({ p }) => p.ti === ti), ...scaled.filter((r) => r.ti === ti)];
    const adam = taskRuns.find(({ spec }) => spec.kind === 'baseline' && spec.name === 'adam')!;
    const adamSpec = adam.spec as Extract<BenchOptimizerSpec, { kind: 'baseline' }>;
    const envelope = lowerEnvelope(adam.out, adamSpec.lrs.length, o.seeds, entry.steps);
    const m = entry.task.meta;
    return {
      task: m.name,
      axis: entry.axis ?? null,
      factor: entry.factor ?? null,
      steps: entry.steps,
      family: m.family,
      width: m.width,
      depth: m.depth,
      batchSize: m.batchSize,
      parametrization: m.parametrization,
      results: taskRuns.map(({ spec, out }) => summarizeRun(spec, out, o.seeds, entry.steps, envelope)),
      adamEnvelope: envelopePoints(envelope),
    };
  });
  const results: BenchResults = {
    format: 'lopt-bench',
    version: 1,
    suite: o.suite.name,
    createdAt: new Date().toISOString(),
    backend: o.backend,
    seeds: o.seeds,
    budget: o.budget,
    maxGridExtensions: MAX_GRID_EXTENSIONS,
    optimizers: specs.map(label),
    tasks,
  };
  await writeAtomic(join(o.outDir, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  return results;
}
