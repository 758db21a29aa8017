// The summary: one table per task (one row per optimizer) and the headline counts, as plain cells
// that summaryMarkdown renders here and html.ts renders as HTML tables.
import type { BenchResults, TaskResult } from '../results.js';
import { formatAccuracy, formatFinalLoss, formatLoss, formatLr, formatSpeedup, NOT_APPLICABLE } from './format.js';
import { headlineRows, optimizerOrder, type HeadlineRow } from './headline.js';
import { BATCH_STUDY_NOTE, batchTable, batchWorkloads } from './batchStudy.js';

export const SUMMARY_COLUMNS = [
  'optimizer',
  'selected lr',
  'final train loss',
  'best train loss',
  'test loss',
  'test accuracy',
  'speedup over tuned Adam',
] as const;

export type SummaryColumn = (typeof SUMMARY_COLUMNS)[number];

export interface TaskSummary {
  task: string;
  /** One line on the task's setting (axis, factor, steps, family, batch, parametrization). */
  description: string;
  /** Cells in SUMMARY_COLUMNS order, one row per optimizer. */
  rows: string[][];
  /** The task's own held-out metrics per optimizer (Task.metrics, e.g. reward margin), or null when it has none. */
  metrics: string | null;
}

/** `adam: preferenceAccuracy 0.812, rewardMargin 0.0431; lamb: …` for the runs that have metrics. */
function metricsLine(t: TaskResult): string | null {
  const parts = t.results
    .filter((r) => r.testMetrics !== undefined)
    .map(
      (r) =>
        `${r.optimizer}: ${Object.entries(r.testMetrics!)
          .map(([k, v]) => `${k} ${v.toPrecision(3)}`)
          .join(', ')}`,
    );
  return parts.length === 0 ? null : `Held-out metrics (test split, selected run, mean over seeds): ${parts.join('; ')}`;
}

export const HEADLINE_COLUMNS = [
  'optimizer',
  'kind',
  'lower final train loss than every other tuned baseline',
  'lower final train loss than tuned Adam',
] as const;

/** A plot the markdown links to (writeReport passes the files it wrote). */
export interface PlotLink {
  title: string;
  /** Relative to summary.md, e.g. `plots/speedup.svg`. */
  path: string;
}

/** The task's setting in one line, e.g. `width ×4 · 1000 steps · mlp · batch 128 · mup`. */
export function taskDescription(t: TaskResult): string {
  const parts: string[] = [];
  if (t.axis !== null) parts.push(t.factor === null ? t.axis : `${t.axis} ×${t.factor}`);
  parts.push(`${t.steps} steps`, t.family);
  if (t.width !== null) parts.push(`width ${t.width}`);
  if (t.depth !== null) parts.push(`depth ${t.depth}`);
  parts.push(`batch ${t.batchSize}`, t.parametrization);
  return parts.join(' · ');
}

export function taskSummaries(results: BenchResults): TaskSummary[] {
  return results.tasks.map((t) => ({
    task: t.task,
    description: taskDescription(t),
    rows: t.results.map((r) => [
      r.optimizer,
      r.kind === 'learned' ? NOT_APPLICABLE : `${formatLr(r.selectedLr)}${r.selectedAtGridEdge ? ' (grid edge)' : ''}${r.tuned ? '' : ' (untuned)'}`,
      formatFinalLoss(r),
      formatLoss(r.bestTrainLoss),
      formatLoss(r.testLoss),
      formatAccuracy(r.testAccuracy),
      formatSpeedup(r),
    ]),
    metrics: metricsLine(t),
  }));
}

export function headlineCells(row: HeadlineRow): string[] {
  return [
    row.optimizer,
    row.kind,
    `${row.beatsEveryBaseline} / ${row.tasks}`,
    row.tasksWithAdam === 0 ? NOT_APPLICABLE : `${row.beatsAdam} / ${row.tasksWithAdam}`,
  ];
}

/** Why the headline counts what it counts, shown under it in both formats. */
export const HEADLINE_NOTE =
  'Tasks on which each optimizer ended with a lower final training loss (smoothed, mean over seeds) than every other ' +
  'tuned baseline, and than tuned Adam, out of the tasks it ran on. A diverged run counts as a loss.';

/**
 * Escapes what markdown would read as table structure or formatting: task and optimizer names are
 * free text (checkpoint paths, underscores) and must show verbatim.
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\|*_`[\]<>#]/g, (c) => `\\${c}`).replace(/\r?\n/g, ' ');
}

/** `textColumns` leading columns are left-aligned, the rest (numbers) right-aligned so digits line up. */
function markdownTable(header: readonly string[], rows: string[][], textColumns = 1): string[] {
  const line = (cells: readonly string[]) => `| ${cells.map(escapeMarkdown).join(' | ')} |`;
  const rule = `|${header.map((_, i) => (i < textColumns ? ' :--- ' : ' ---: ')).join('|')}|`;
  return [line(header), rule, ...rows.map(line)];
}

export function summaryMarkdown(results: BenchResults, plots: PlotLink[] = []): string {
  const lines: string[] = [
    `# lopt bench: ${escapeMarkdown(results.suite)}`,
    '',
    `${results.tasks.length} tasks · ${results.seeds} seeds · ${results.budget} learning rates per tuned baseline, half a decade apart (extended by two past an end holding the optimum, at most ${results.maxGridExtensions ?? 0} times) · ` +
      `backend ${escapeMarkdown(results.backend)} · ${escapeMarkdown(results.createdAt)}`,
    '',
    '## Headline',
    '',
    HEADLINE_NOTE,
    '',
    ...markdownTable(HEADLINE_COLUMNS, headlineRows(results).map(headlineCells), 2),
    '',
    '## Results per task',
    '',
    'Losses: smoothed training loss, mean over seeds. Speedup: steps tuned Adam needs to reach the final ' +
      'training loss, over the steps taken (`≥` where Adam never reached it).',
  ];
  for (const s of taskSummaries(results)) {
    lines.push('', `### ${escapeMarkdown(s.task)}`, '', escapeMarkdown(s.description), '', ...markdownTable(SUMMARY_COLUMNS, s.rows));
    if (s.metrics !== null) lines.push('', escapeMarkdown(s.metrics));
  }
  const workloads = batchWorkloads(results);
  if (workloads.length > 0) {
    lines.push('', '## Batch-size study', '', escapeMarkdown(BATCH_STUDY_NOTE));
    for (const w of workloads) {
      const { header, rows } = batchTable(w, optimizerOrder(results));
      lines.push(
        '',
        `### ${escapeMarkdown(w.workload)}`,
        '',
        `Target training loss: ${w.target === null ? 'none (every run at the largest batch diverged)' : w.target.toFixed(4)}`,
        '',
        ...markdownTable(header, rows),
      );
    }
  }
  if (plots.length > 0) {
    lines.push('', '## Plots', '');
    // Angle brackets keep paths with spaces or parentheses intact as link targets.
    for (const p of plots) lines.push(`![${escapeMarkdown(p.title)}](<${p.path}>)`, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
