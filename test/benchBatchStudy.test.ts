// The report's batch-size study (Reality Check suites): workloads, the target loss, steps to it,
// the tables in markdown and HTML, and the gap plots.
import { describe, expect, it } from 'vitest';
import type { BenchResults, OptimizerResult, TaskResult } from '../src/evaluate/results.js';
import { batchTable, batchWorkloads, gapPoints, stepsToTarget } from '../src/evaluate/report/batchStudy.js';
import { reportHtml } from '../src/evaluate/report/html.js';
import { reportPlots } from '../src/evaluate/report/plots.js';
import { renderSvg } from '../src/evaluate/report/renderSvg.js';
import { summaryMarkdown } from '../src/evaluate/report/summaryTable.js';

/** A run whose smoothed loss falls linearly from 2 to `final` over `steps` (10 curve points); null final: diverged. */
function run(optimizer: string, final: number | null, steps: number): OptimizerResult {
  const curve = Array.from({ length: 11 }, (_, i) => ({ step: (i * steps) / 10, loss: final === null ? null : 2 + ((final - 2) * i) / 10 }));
  return {
    optimizer,
    kind: 'baseline',
    tuned: true,
    grid: [],
    selectedLr: 0.1,
    selectedAtGridEdge: false,
    diverged: final === null,
    divergedAt: final === null ? 3 : null,
    finalTrainLoss: final,
    bestTrainLoss: final,
    testLoss: final,
    testAccuracy: null,
    speedupOverAdam: final === null ? null : 1,
    speedupIsLowerBound: false,
    curve,
    seconds: 1,
  };
}

function task(name: string, batchSize: number, steps: number, finals: Record<string, number | null>, axis = 'batch'): TaskResult {
  return {
    task: name,
    axis,
    factor: batchSize / 128,
    steps,
    family: name.split('-')[0]!,
    width: 64,
    depth: 2,
    batchSize,
    parametrization: 'sp',
    results: Object.entries(finals).map(([o, f]) => run(o, f, steps)),
    adamEnvelope: [],
  };
}

const OPTS = ['nesterov', 'lars', 'adam', 'lamb'];
function results(tasks: TaskResult[]): BenchResults {
  return {
    format: 'lopt-bench',
    version: 1,
    suite: 'reality-check',
    createdAt: '2026-12-03',
    backend: 'wasm',
    seeds: 1,
    budget: 7,
    maxGridExtensions: 3,
    optimizers: OPTS,
    tasks,
  };
}

const mlp = (b: number, steps: number, f: Record<string, number | null>, axis = 'batch') => task(`mlp-mnist8-w64-d2-relu-b${b}-sp`, b, steps, f, axis);
const conv = (b: number, steps: number, f: Record<string, number | null>) => task(`conv-mnist8-w8-b${b}-sp`, b, steps, f);
const bench = results([
  mlp(128, 1000, { nesterov: 0.2, lars: 0.25, adam: 0.21, lamb: 0.22 }, 'baseline'),
  mlp(8192, 16, { nesterov: 0.9, lars: 0.8, adam: 1.0, lamb: null }),
  conv(512, 100, { nesterov: 0.5, lars: 0.5, adam: 0.5, lamb: 0.5 }),
  conv(128, 400, { nesterov: 0.4, lars: 0.6, adam: 0.45, lamb: 0.5 }),
  // Same task name twice (a horizon entry): not a batch workload.
  task('mlp-mnist8-w32-d1-relu-b128-mup', 128, 1000, { adam: 0.3 }, 'baseline'),
  task('mlp-mnist8-w32-d1-relu-b128-mup', 128, 5000, { adam: 0.2 }, 'horizon'),
  task('mlp-mnist8-w32-d1-relu-b512-mup', 512, 1000, { adam: 0.4 }),
]);

describe('batch-size study', () => {
  it('groups tasks that differ only in batch size, in batch order, and sets the target to the best final loss at the largest batch', () => {
    const ws = batchWorkloads(bench);
    expect(ws.map((w) => w.workload)).toEqual(['mlp-mnist8-w64-d2-relu-b*-sp', 'conv-mnist8-w8-b*-sp']);
    expect(ws[1]!.tasks.map((t) => t.batchSize)).toEqual([128, 512]);
    expect(ws[0]!.target).toBe(0.8); // lars at 8192; lamb diverged there
    expect(ws[1]!.target).toBe(0.5);
  });

  it('steps to target: the first curve point at or below it; none when never reached or diverged', () => {
    const r = run('adam', 0.21, 1000); // 2 → 0.21 linearly over 10 points
    expect(stepsToTarget(r, 0.8)).toBe(700); // 2 − 0.179·7 = 0.747 ≤ 0.8 first at point 7
    expect(stepsToTarget(r, 0.1)).toBeNull();
    expect(stepsToTarget(run('lamb', null, 16), 0.8)).toBeNull();
  });

  it('the tables: a column per batch size, final loss and steps to target per optimizer, diverged runs named', () => {
    const { header, rows } = batchTable(batchWorkloads(bench)[0]!, OPTS);
    expect(header).toEqual(['optimizer', 'batch 128 (1000 steps)', 'batch 8192 (16 steps)']);
    expect(rows).toEqual([
      ['nesterov', '0.2000 (700)', '0.9000 (—)'],
      ['lars', '0.2500 (700)', '0.8000 (16)'],
      ['adam', '0.2100 (700)', '1.0000 (—)'],
      ['lamb', '0.2200 (700)', 'diverged'],
    ]);
    const md = summaryMarkdown(bench);
    expect(md).toContain('## Batch-size study');
    expect(md).toContain('### mlp-mnist8-w64-d2-relu-b\\*-sp');
    expect(md).toContain('| lars | 0.2500 (700) | 0.8000 (16) |');
    expect(md).toContain('Target training loss: 0.8000');
    const html = reportHtml(bench, []);
    expect(html).toContain('<section id="batch-study">');
    expect(html).toContain('<td>0.8000 (16)</td>');
  });

  it('gap plots: the second over the first per pair and batch, diverged pairs left out; the shared batch-factor plot is dropped', async () => {
    const gaps = gapPoints(batchWorkloads(bench)[0]!);
    expect(gaps).toEqual([
      { pair: 'lars / nesterov', batch: 128, ratio: 0.25 / 0.2 },
      { pair: 'lars / nesterov', batch: 8192, ratio: 0.8 / 0.9 },
      { pair: 'lamb / adam', batch: 128, ratio: 0.22 / 0.21 },
    ]);
    const plots = reportPlots(bench);
    const names = plots.map((p) => p.name);
    expect(names).toContain('gap-vs-batch-mlp-mnist8-w64-d2-relu-b-sp');
    expect(names.filter((n) => n.startsWith('gap-vs-batch-'))).toHaveLength(2);
    expect(names).not.toContain('final-loss-vs-batch');
    // Two workloads' ×1 baselines make no width axis; the horizon entry does make one.
    expect(names.filter((n) => n.startsWith('final-loss-vs-'))).toEqual(['final-loss-vs-horizon']);
    const svg = await renderSvg(plots.find((p) => p.name.startsWith('gap-vs-batch-mlp'))!.spec);
    expect(svg).toContain('lars / nesterov');
  });

  it('a suite without batch workloads gets no section', () => {
    const single = results([mlp(128, 1000, { adam: 0.2 }, 'baseline')]);
    expect(summaryMarkdown(single)).not.toContain('Batch-size study');
    expect(reportPlots(single).some((p) => p.name.startsWith('gap-'))).toBe(false);
  });
});
