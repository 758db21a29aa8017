// The batch-size study of a report (after "A Large Batch Optimizer Reality Check", Nado et al.
// 2021): the suite's tasks that differ only in batch size form a workload; per workload, each
// optimizer's final training loss and steps to a target loss at every batch size, and the gap
// between each generic optimizer and its layer-wise or second-order counterpart.
import type { BenchResults, OptimizerResult, TaskResult } from '../results.js';

export interface BatchWorkload {
  /** The task name with its batch size taken out (`mlp-mnist8-w64-d2-relu-b*-sp`). */
  workload: string;
  /** Its tasks by ascending batch size. */
  tasks: TaskResult[];
  /**
   * The target training loss: the lowest final loss any optimizer reached at the largest batch
   * size (so every batch size has a reachable target and no optimizer picks it).
   */
  target: number | null;
}

/** Pairs compared in the gap plot: a generic optimizer, then the one claimed to beat it at large batch. */
export const GAP_PAIRS: readonly (readonly [string, string])[] = [
  ['nesterov', 'lars'],
  ['nesterov', 'tvlars'],
  ['nesterov', 'mkor'],
  ['adam', 'lamb'],
  ['adam', 'mkorlamb'],
];

const BATCH = /-b(\d+)(?=-|$)/;

/** Workloads: groups of two or more tasks whose names differ only in the batch size, each batch size once. */
export function batchWorkloads(results: BenchResults): BatchWorkload[] {
  const groups = new Map<string, TaskResult[]>();
  for (const t of results.tasks) {
    if (!BATCH.test(t.task)) continue;
    const key = t.task.replace(BATCH, '-b*');
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const out: BatchWorkload[] = [];
  for (const [workload, tasks] of groups) {
    const sizes = new Set(tasks.map((t) => t.batchSize));
    if (sizes.size < 2 || sizes.size !== tasks.length || !tasks.some((t) => t.axis === 'batch')) continue;
    tasks.sort((a, b) => a.batchSize - b.batchSize);
    const finals = tasks.at(-1)!.results.flatMap((r) => (r.diverged || r.finalTrainLoss === null ? [] : [r.finalTrainLoss]));
    out.push({ workload, tasks, target: finals.length === 0 ? null : Math.min(...finals) });
  }
  return out;
}

/** The first step at which the selected run's smoothed training loss was at or below `target` (curve resolution), or null. */
export function stepsToTarget(r: OptimizerResult, target: number | null): number | null {
  if (target === null || r.diverged) return null;
  return r.curve.find((p) => p.loss !== null && p.loss <= target)?.step ?? null;
}

/** `0.3121 (420)`: final loss and steps to the target, `—` where not reached; `diverged` when it did. */
export function batchCell(r: OptimizerResult | undefined, target: number | null): string {
  if (r === undefined) return '';
  if (r.diverged || r.finalTrainLoss === null) return 'diverged';
  const steps = stepsToTarget(r, target);
  return `${r.finalTrainLoss.toFixed(4)} (${steps === null ? '—' : steps})`;
}

/** The table of one workload: a row per optimizer, a column per batch size. */
export function batchTable(w: BatchWorkload, optimizers: string[]): { header: string[]; rows: string[][] } {
  const header = ['optimizer', ...w.tasks.map((t) => `batch ${t.batchSize} (${t.steps} steps)`)];
  const rows = optimizers
    .filter((o) => w.tasks.some((t) => t.results.some((r) => r.optimizer === o)))
    .map((o) => [
      o,
      ...w.tasks.map((t) =>
        batchCell(
          t.results.find((r) => r.optimizer === o),
          w.target,
        ),
      ),
    ]);
  return { header, rows };
}

/** Per pair and batch size: final loss of the second over the first's (> 1: the generic optimizer ended lower). */
export function gapPoints(w: BatchWorkload): { pair: string; batch: number; ratio: number }[] {
  const points: { pair: string; batch: number; ratio: number }[] = [];
  for (const [base, other] of GAP_PAIRS) {
    for (const t of w.tasks) {
      const a = t.results.find((r) => r.optimizer === base);
      const b = t.results.find((r) => r.optimizer === other);
      if (!a || !b || a.diverged || b.diverged || a.finalTrainLoss === null || b.finalTrainLoss === null || a.finalTrainLoss <= 0) continue;
      points.push({ pair: `${other} / ${base}`, batch: t.batchSize, ratio: b.finalTrainLoss / a.finalTrainLoss });
    }
  }
  return points;
}

export const BATCH_STUDY_NOTE =
  'Tasks that differ only in batch size, trained for the same number of epochs. Each cell: final training loss ' +
  '(smoothed, mean over seeds) at the selected learning rate, and in parentheses the first step at which the ' +
  'smoothed loss reached the workload’s target (— never); the target is the lowest final loss any optimizer ' +
  'reached at the largest batch size.';
