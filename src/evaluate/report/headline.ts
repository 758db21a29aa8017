// The headline: per optimizer, on how many tasks it beat the tuned baselines on final training loss.
import type { BenchResults, OptimizerResult, TaskResult } from '../results.js';

/** The optimizer every speedup is measured against. */
export const ADAM = 'adam';

export interface HeadlineRow {
  optimizer: string;
  kind: OptimizerResult['kind'];
  /** Tasks this optimizer ran on. */
  tasks: number;
  /** Tasks where its final training loss was lower than that of every other tuned baseline. */
  beatsEveryBaseline: number;
  /** Tasks that also ran tuned Adam. */
  tasksWithAdam: number;
  /** Of those, tasks where its final training loss was lower than tuned Adam's. */
  beatsAdam: number;
}

/** A finite final loss, or null where the run diverged (divergence counts as a loss, never a win). */
function finalLoss(r: OptimizerResult): number | null {
  if (r.diverged || r.finalTrainLoss === null || !Number.isFinite(r.finalTrainLoss)) return null;
  return r.finalTrainLoss;
}

/** Whether `a` ended strictly lower than `b`: a diverged `a` loses, a diverged `b` is beaten by any finite `a`. */
export function endsLower(a: OptimizerResult, b: OptimizerResult): boolean {
  const la = finalLoss(a);
  if (la === null) return false;
  const lb = finalLoss(b);
  return lb === null || la < lb;
}

/** Optimizer names in the order of `results.optimizers`, then any that only appear in task results. */
export function optimizerOrder(results: BenchResults): string[] {
  const order = [...results.optimizers];
  for (const t of results.tasks) for (const r of t.results) if (!order.includes(r.optimizer)) order.push(r.optimizer);
  return order;
}

function resultOf(task: TaskResult, optimizer: string): OptimizerResult | undefined {
  return task.results.find((r) => r.optimizer === optimizer);
}

/** One row per optimizer other than Adam, in `optimizerOrder`. */
export function headlineRows(results: BenchResults): HeadlineRow[] {
  const rows: HeadlineRow[] = [];
  for (const optimizer of optimizerOrder(results)) {
    if (optimizer === ADAM) continue;
    let kind: OptimizerResult['kind'] | undefined;
    let tasks = 0;
    let beatsEveryBaseline = 0;
    let tasksWithAdam = 0;
    let beatsAdam = 0;
    for (const task of results.tasks) {
      const mine = resultOf(task, optimizer);
      if (mine === undefined) continue;
      kind = mine.kind;
      tasks += 1;
      // Compared with the other *tuned* baselines (not itself, not an untuned `name@lr` reference).
      const others = task.results.filter((r) => r.kind === 'baseline' && r.tuned && r.optimizer !== optimizer);
      if (others.every((b) => endsLower(mine, b)) && finalLoss(mine) !== null) beatsEveryBaseline += 1;
      const adam = resultOf(task, ADAM);
      if (adam !== undefined) {
        tasksWithAdam += 1;
        if (endsLower(mine, adam)) beatsAdam += 1;
      }
    }
    if (kind === undefined) continue;
    rows.push({ optimizer, kind, tasks, beatsEveryBaseline, tasksWithAdam, beatsAdam });
  }
  return rows;
}
