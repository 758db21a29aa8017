// What a model card says about a learned optimizer's `lopt bench` results: per task, per axis, and
// against its SP twin along the width axis. Pure functions of the results file.
import type { BenchResults, OptimizerResult, TaskResult } from './results.js';

export function resultFor(task: TaskResult, optimizer: string): OptimizerResult | undefined {
  return task.results.find((r) => r.optimizer === optimizer);
}

export interface EvaluationRow {
  task: TaskResult;
  mine: OptimizerResult;
  /** The tuned baseline with the lowest final training loss (null when all diverged). */
  best: OptimizerResult | null;
  /** Lower final training loss than every tuned baseline (a diverged baseline counts as beaten). */
  wins: boolean;
  /** mine / best final training loss (null when either diverged). */
  ratio: number | null;
}

/** Final-loss comparison of one learned optimizer against every tuned baseline, per task it ran on. */
export function evaluationRows(results: BenchResults, learned: string): EvaluationRow[] {
  const rows: EvaluationRow[] = [];
  for (const task of results.tasks) {
    const mine = resultFor(task, learned);
    if (!mine) continue;
    const tuned = task.results.filter((r) => r.kind === 'baseline' && r.tuned);
    let best: OptimizerResult | null = null;
    for (const r of tuned) if (r.finalTrainLoss !== null && (best === null || r.finalTrainLoss < best.finalTrainLoss!)) best = r;
    const m = mine.finalTrainLoss;
    const wins = m !== null && tuned.every((r) => r.finalTrainLoss === null || m < r.finalTrainLoss);
    const ratio = m !== null && best?.finalTrainLoss ? m / best.finalTrainLoss : null;
    rows.push({ task, mine, best, wins, ratio });
  }
  return rows;
}

export interface AxisSummary {
  axis: string;
  tasks: number;
  wins: number;
  /** Geometric mean of mine / best tuned final loss over the axis's tasks where both finished. */
  geoMeanRatio: number | null;
  diverged: number;
}

/** Wins per generalization axis, in the order the axes first appear in the suite. */
export function axisSummaries(rows: EvaluationRow[]): AxisSummary[] {
  const order: string[] = [];
  const byAxis = new Map<string, EvaluationRow[]>();
  for (const r of rows) {
    const axis = r.task.axis ?? 'other';
    if (!byAxis.has(axis)) {
      byAxis.set(axis, []);
      order.push(axis);
    }
    byAxis.get(axis)!.push(r);
  }
  return order.map((axis) => {
    const rs = byAxis.get(axis)!;
    const ratios = rs.map((r) => r.ratio).filter((x): x is number => x !== null);
    return {
      axis,
      tasks: rs.length,
      wins: rs.filter((r) => r.wins).length,
      geoMeanRatio: ratios.length > 0 ? Math.exp(ratios.reduce((s, x) => s + Math.log(x), 0) / ratios.length) : null,
      diverged: rs.filter((r) => r.mine.diverged).length,
    };
  });
}

export interface TwinRow {
  /** Width multiple of the meta-training width (the suite's width axis; the baseline entry is ×1). */
  factor: number;
  width: number | null;
  /** The μP learned optimizer on the μP task, and the SP twin on the SP task: each in its own parametrization. */
  mupOnMup: number | null;
  spOnSp: number | null;
  /** The crossed pairs, for completeness. */
  mupOnSp: number | null;
  spOnMup: number | null;
  wins: boolean;
}

/**
 * The μP comparison of μLO's paper: at every width, the μP learned optimizer on the μP task against
 * its SP twin on the SP task, both one trial. Widths without both parametrizations are skipped.
 */
export function twinRows(results: BenchResults, learned: string, twin: string): TwinRow[] {
  const widthTasks = results.tasks.filter((t) => t.axis === 'width' || (t.axis === 'baseline' && t.factor === 1));
  const factors = [...new Set(widthTasks.map((t) => t.factor ?? 1))].sort((a, b) => a - b);
  const loss = (t: TaskResult | undefined, name: string) => (t ? (resultFor(t, name)?.finalTrainLoss ?? null) : null);
  const rows: TwinRow[] = [];
  for (const factor of factors) {
    const at = widthTasks.filter((t) => (t.factor ?? 1) === factor);
    const mup = at.find((t) => t.parametrization === 'mup');
    const sp = at.find((t) => t.parametrization === 'sp');
    if (!mup || !sp) continue;
    const mupOnMup = loss(mup, learned);
    const spOnSp = loss(sp, twin);
    rows.push({
      factor,
      width: mup.width,
      mupOnMup,
      spOnSp,
      mupOnSp: loss(sp, learned),
      spOnMup: loss(mup, twin),
      wins: mupOnMup !== null && (spOnSp === null || mupOnMup < spOnSp),
    });
  }
  return rows;
}
