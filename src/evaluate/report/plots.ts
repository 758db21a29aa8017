// The report's plots as vega-lite specs (rendered to SVG by renderSvg.ts): training curves per task,
// speedups over tuned Adam, and final loss along the generalization axes.
import type { TopLevelSpec } from 'vega-lite';
import type { BenchResults, OptimizerResult, TaskResult } from '../results.js';
import { divergedText } from './format.js';
import { optimizerOrder } from './headline.js';
import { safeFileStem, uniqueStems } from './fileNames.js';
import { batchWorkloads, gapPoints, type BatchWorkload } from './batchStudy.js';

export interface PlotSpec {
  /** File stem, unique within a report and safe as a file name ([a-z0-9-_.]). */
  name: string;
  title: string;
  /** One or two sentences under the plot: what it shows and what it leaves out. */
  caption: string;
  spec: TopLevelSpec;
}

/** The axes whose tasks get a final-loss-versus-factor plot. */
export const FACTOR_AXES = ['width', 'horizon', 'batch'] as const;

const KINDS: OptimizerResult['kind'][] = ['baseline', 'learned'];
// Learned optimizers are the subject of the report: drawn dashed and thicker so they stand out
// from the baselines even where colours are hard to tell apart.
const KIND_DASH = [
  [1, 0],
  [6, 3],
];
const KIND_WIDTH = [1.5, 3];
const CURVE_SIZE = { width: 560, height: 320 };
const FACTOR_SIZE = { width: 360, height: 280 };
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

const isFiniteNumber = (x: number | null): x is number => x !== null && Number.isFinite(x);

/**
 * Log scale only where every value is positive (log of 0 or a negative loss is undefined). With no
 * finite value at all (every run diverged) a fixed domain keeps the empty axis well defined.
 */
function lossScale(values: number[]): { type: 'log' } | { type: 'linear'; zero: false } | { type: 'linear'; domain: [number, number] } {
  if (values.length === 0) return { type: 'linear', domain: [0, 1] };
  return values.every((v) => v > 0) ? { type: 'log' } : { type: 'linear', zero: false };
}

/** The same colour for an optimizer in every plot: the domain is the bench's optimizer list. */
function colorEncoding(domain: string[]) {
  return { field: 'optimizer', type: 'nominal', title: 'optimizer', scale: { domain, scheme: 'tableau10' } } as const;
}

function kindEncodings() {
  return {
    strokeDash: { field: 'kind', type: 'nominal', title: 'kind', scale: { domain: KINDS, range: KIND_DASH } },
    // Same title as strokeDash: vega-lite merges the two into one 'kind' legend.
    strokeWidth: { field: 'kind', type: 'ordinal', title: 'kind', scale: { domain: KINDS, range: KIND_WIDTH } },
  } as const;
}

function divergedList(results: OptimizerResult[]): string {
  const diverged = results.filter((r) => r.diverged).map((r) => `${r.optimizer} (${divergedText(r)})`);
  return diverged.length === 0 ? '' : ` Diverged: ${diverged.join(', ')}; their curves end where the loss stopped being finite.`;
}

/** Training-loss curves of one task, one line per optimizer; a cross marks where a run diverged. */
export function curveSpec(task: TaskResult, optimizers: string[]): TopLevelSpec {
  const points = task.results.flatMap((r) =>
    r.curve.filter((p) => isFiniteNumber(p.loss)).map((p) => ({ optimizer: r.optimizer, kind: r.kind, step: p.step, loss: p.loss as number })),
  );
  const ends = task.results.flatMap((r) => {
    const last = r.diverged ? [...r.curve].reverse().find((p) => isFiniteNumber(p.loss)) : undefined;
    return last === undefined ? [] : [{ optimizer: r.optimizer, kind: r.kind, step: last.step, loss: last.loss as number }];
  });
  // The whole run on x, so a curve that stops early (divergence) is visibly short.
  const x = { field: 'step', type: 'quantitative', title: 'step', scale: { domain: [0, task.steps] as number[] } } as const;
  const y = { field: 'loss', type: 'quantitative', title: 'training loss (smoothed, mean over seeds)', scale: lossScale(points.map((p) => p.loss)) } as const;
  return {
    $schema: SCHEMA,
    title: {
      text: `Training loss: ${task.task}`,
      subtitle: points.length === 0 ? 'every run diverged: no finite loss to draw' : `${task.steps} steps, selected learning rate per baseline`,
    },
    ...CURVE_SIZE,
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', clip: true },
        encoding: { x, y, color: colorEncoding(optimizers), ...kindEncodings() },
      },
      {
        data: { values: ends },
        mark: { type: 'point', shape: 'cross', size: 120, filled: true, clip: true },
        encoding: { x, y, color: colorEncoding(optimizers) },
      },
    ],
  };
}

/**
 * Speedup over tuned Adam per task (a group of horizontal bars each, so long task names stay
 * readable) and optimizer; a dashed rule at 1 is parity with Adam.
 */
export function speedupSpec(results: BenchResults, optimizers: string[]): TopLevelSpec {
  const bars = results.tasks.flatMap((t) =>
    t.results
      .filter((r) => !r.diverged && isFiniteNumber(r.speedupOverAdam))
      .map((r) => ({
        task: t.task,
        optimizer: r.optimizer,
        speedup: r.speedupOverAdam as number,
        bound: r.speedupIsLowerBound ? 'lower bound' : 'measured',
        label: `${r.speedupIsLowerBound ? '≥' : ''}${(r.speedupOverAdam as number).toFixed(2)}`,
      })),
  );
  const taskOrder = results.tasks.map((t) => t.task);
  const y = { field: 'task', type: 'nominal', title: null, sort: taskOrder, axis: { labelLimit: 320 } } as const;
  const yOffset = { field: 'optimizer', type: 'nominal', scale: { domain: optimizers } } as const;
  const x = { field: 'speedup', type: 'quantitative', title: 'speedup over tuned Adam (×)' } as const;
  return {
    $schema: SCHEMA,
    title: { text: 'Speedup over tuned Adam', subtitle: 'steps Adam needs to reach the final training loss ÷ steps taken' },
    width: 420,
    height: Math.max(160, results.tasks.length * (optimizers.length + 1) * 12),
    layer: [
      {
        data: { values: bars },
        mark: { type: 'bar' },
        encoding: {
          y,
          yOffset,
          x,
          color: colorEncoding(optimizers),
          // A lower bound is paler: the bar is a floor, not a measurement.
          opacity: { field: 'bound', type: 'ordinal', title: 'speedup', scale: { domain: ['measured', 'lower bound'], range: [1, 0.4] } },
        },
      },
      {
        data: { values: bars },
        mark: { type: 'text', align: 'left', dx: 3, fontSize: 9 },
        encoding: { y, yOffset, x, text: { field: 'label', type: 'nominal' } },
      },
      {
        data: { values: [{ parity: 1 }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'black' },
        encoding: { x: { field: 'parity', type: 'quantitative' } },
      },
    ],
  };
}

/** The tasks of one axis that have a factor, in factor order. */
/** The tasks along one axis, by factor; the suite's 'baseline' entries (factor 1) are every axis's ×1 point. */
export function axisTasks(results: BenchResults, axis: string): TaskResult[] {
  return results.tasks
    .filter((t) => (t.axis === axis || (t.axis === 'baseline' && t.factor === 1)) && isFiniteNumber(t.factor))
    .sort((a, b) => (a.factor as number) - (b.factor as number));
}

/**
 * Final training loss against the axis factor, one line per optimizer. Tasks with both
 * parametrizations (μP and SP twins at one factor) get a panel each, since their losses differ.
 */
export function factorSpec(results: BenchResults, axis: string, optimizers: string[]): TopLevelSpec {
  const points = axisTasks(results, axis).flatMap((t) =>
    t.results
      .filter((r) => !r.diverged && isFiniteNumber(r.finalTrainLoss))
      .map((r) => ({
        task: t.task,
        factor: t.factor as number,
        parametrization: t.parametrization,
        optimizer: r.optimizer,
        kind: r.kind,
        loss: r.finalTrainLoss as number,
      })),
  );
  const factors = axisTasks(results, axis).map((t) => t.factor as number);
  const encoding = {
    x: {
      field: 'factor',
      type: 'quantitative',
      title: `${axis} factor (× the meta-training setting)`,
      // Every task's factor on the axis, even one whose runs all diverged.
      scale: { type: 'log', domain: [Math.min(...factors), Math.max(...factors)] as number[] },
      // Ticks at the factors run, not at the log scale's 1…9 × 10ⁿ.
      axis: { values: [...new Set(factors)] as number[], format: '~g', grid: true },
    },
    y: { field: 'loss', type: 'quantitative', title: 'final training loss', scale: lossScale(points.map((p) => p.loss)) },
    color: colorEncoding(optimizers),
  } as const;
  const layer = [
    { mark: { type: 'line' }, encoding: { ...encoding, ...kindEncodings() } },
    { mark: { type: 'point', filled: true, size: 40 }, encoding },
  ] as const;
  const title = { text: `Final training loss along ${axis}`, subtitle: 'diverged runs omitted' };
  const parametrizations = [...new Set(points.map((p) => p.parametrization))];
  if (parametrizations.length > 1) {
    return {
      $schema: SCHEMA,
      title,
      data: { values: points },
      facet: { column: { field: 'parametrization', type: 'nominal', title: 'parametrization' } },
      spec: { ...FACTOR_SIZE, layer: [...layer] },
    };
  }
  return { $schema: SCHEMA, title, data: { values: points }, ...FACTOR_SIZE, layer: [...layer] };
}

/** The gap plot of one batch-size workload: final loss of each claimed large-batch optimizer over its generic counterpart's, against batch size. */
export function gapSpec(w: BatchWorkload): TopLevelSpec {
  const points = gapPoints(w);
  const batches = w.tasks.map((t) => t.batchSize);
  const encoding = {
    x: {
      field: 'batch',
      type: 'quantitative',
      title: 'batch size (same epochs)',
      scale: { type: 'log', domain: [Math.min(...batches), Math.max(...batches)] as number[] },
      axis: { values: batches, format: '~g', grid: true },
    },
    y: { field: 'ratio', type: 'quantitative', title: 'final loss ratio (> 1: the generic optimizer ended lower)', scale: { type: 'log' } },
    color: { field: 'pair', type: 'nominal', title: 'pair', scale: { scheme: 'tableau10' } },
  } as const;
  return {
    $schema: SCHEMA,
    title: { text: `Gap against batch size: ${w.workload}`, subtitle: 'diverged runs omitted' },
    ...FACTOR_SIZE,
    layer: [
      { data: { values: [{ one: 1 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { y: { field: 'one', type: 'quantitative' } } },
      { data: { values: points }, mark: { type: 'line' }, encoding },
      { data: { values: points }, mark: { type: 'point', filled: true, size: 40 }, encoding },
    ],
  };
}

/** Every plot of the report, in the order the HTML page shows them. */
export function reportPlots(results: BenchResults): PlotSpec[] {
  const optimizers = optimizerOrder(results);
  const plots: Omit<PlotSpec, 'name'>[] = [];
  const stems: string[] = [];
  for (const t of results.tasks) {
    stems.push(`curves-${safeFileStem(t.task)}`);
    plots.push({
      title: `Training loss: ${t.task}`,
      caption:
        `Smoothed training loss (mean over ${results.seeds} seeds) of every optimizer on ${t.task}; baselines at their ` +
        `selected learning rate, learned optimizers dashed and thicker.${divergedList(t.results)}`,
      spec: curveSpec(t, optimizers),
    });
  }
  const anySpeedup = results.tasks.some((t) => t.results.some((r) => !r.diverged && isFiniteNumber(r.speedupOverAdam)));
  if (anySpeedup) {
    stems.push('speedup-over-adam');
    plots.push({
      title: 'Speedup over tuned Adam',
      caption:
        'Steps tuned Adam (its lower envelope over learning rates) needs to reach each run’s final training loss, divided by ' +
        'the steps taken; above the dashed line at 1 the optimizer is faster than Adam. Pale bars are lower bounds ' +
        '(Adam never reached that loss); diverged runs have no bar.',
      spec: speedupSpec(results, optimizers),
    });
  }
  for (const axis of FACTOR_AXES) {
    const tasks = axisTasks(results, axis);
    // One task is a point, not a trend; and baselines alone (several workloads' ×1 entries) are no axis.
    if (tasks.length < 2 || !tasks.some((t) => t.axis === axis)) continue;
    // Several batch-size workloads (a Reality Check suite) would share one line per optimizer: their gap plots show them apart.
    if (axis === 'batch' && batchWorkloads(results).length > 1) continue;
    stems.push(`final-loss-vs-${axis}`);
    plots.push({
      title: `Final training loss along ${axis}`,
      caption:
        `Final training loss against the ${axis} factor (log scale) over ${tasks.length} tasks, one line per optimizer ` +
        '(learned optimizers dashed), one panel per parametrization where both ran; diverged runs are left out.',
      spec: factorSpec(results, axis, optimizers),
    });
  }
  for (const w of batchWorkloads(results)) {
    if (gapPoints(w).length === 0) continue;
    stems.push(`gap-vs-batch-${safeFileStem(w.workload)}`);
    plots.push({
      title: `Gap against batch size: ${w.workload}`,
      caption:
        'Final training loss of LARS, TVLARS and MKOR over tuned Nesterov’s and of LAMB and MKOR-on-LAMB over tuned Adam’s, ' +
        'at each batch size (same epochs, each optimizer at its own selected learning rate); above the dashed line the ' +
        'generic optimizer ended lower. Pairs where either run diverged are left out.',
      spec: gapSpec(w),
    });
  }
  const names = uniqueStems(stems);
  return plots.map((p, i) => ({ ...p, name: names[i] as string }));
}
