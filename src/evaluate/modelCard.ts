// A shipped learned optimizer's model card, written from what produced it: the meta-training run
// folder (recipe, metrics, final theta) and, when given, a `lopt bench` results file. Nothing in
// the card is typed by hand: every number comes from those files.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/index.js';
import type { Checkpoint, JsonValue } from '../checkpoint/format.js';
import { runPaths } from '../meta/runDir.js';
import { renderSvg } from './report/renderSvg.js';
import { formatLoss } from './report/format.js';
import type { BenchResults, OptimizerResult, TaskResult } from './results.js';

export interface CardRun {
  /** Shipped name, e.g. 'mulo-mnist' (checkpoints/<name>.lopt). */
  name: string;
  runDir: string;
}

export interface ModelCardOptions extends CardRun {
  /** The SP twin, meta-trained with the same budget. */
  twin?: CardRun;
  /** A `lopt bench` output folder whose results include lopt:<name> (and the twin). */
  benchDir?: string;
  /** Where the checkpoint, card and plot go (the package's checkpoints/ folder). */
  outDir: string;
}

interface MetricsLine {
  step: number;
  metaLoss: number;
  seconds: number;
}

async function readMetrics(runDir: string): Promise<MetricsLine[]> {
  const text = await readFile(runPaths(runDir).metrics, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as MetricsLine);
}

async function runSummary(run: CardRun) {
  const recipe = JSON.parse(await readFile(runPaths(run.runDir).recipe, 'utf8')) as { name: string; outerSteps: number; learnedOptimizer: { arch: string; config: Record<string, unknown> } };
  const metrics = await readMetrics(run.runDir);
  if (metrics.length === 0 || metrics.at(-1)!.step !== recipe.outerSteps) {
    throw new Error(`card: ${run.runDir} has not finished (${metrics.at(-1)?.step ?? 0} of ${recipe.outerSteps} outer steps); resume it first`);
  }
  const theta = await loadCheckpoint(runPaths(run.runDir).theta);
  const seconds = metrics.reduce((s, m) => s + m.seconds, 0);
  return { run, recipe, metrics, theta, seconds };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function hours(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

function resultFor(task: TaskResult, optimizer: string): OptimizerResult | undefined {
  return task.results.find((r) => r.optimizer === optimizer);
}

/** Final-loss comparison of one learned optimizer against every tuned baseline, per task. */
function evaluationRows(results: BenchResults, learned: string) {
  return results.tasks
    .map((t) => {
      const mine = resultFor(t, learned);
      if (!mine) return null;
      const tuned = t.results.filter((r) => r.kind === 'baseline' && r.tuned);
      const finite = tuned.filter((r) => r.finalTrainLoss !== null);
      const best = finite.reduce<OptimizerResult | null>((b, r) => (b === null || r.finalTrainLoss! < b.finalTrainLoss! ? r : b), null);
      const wins = mine.finalTrainLoss !== null && tuned.every((r) => r.finalTrainLoss === null || mine.finalTrainLoss! < r.finalTrainLoss);
      return { task: t, mine, best, wins };
    })
    .filter((r): r is NonNullable<typeof r> => r !== null);
}

export async function writeModelCard(o: ModelCardOptions): Promise<{ card: string; checkpoint: string }> {
  const main = await runSummary(o);
  const twin = o.twin ? await runSummary(o.twin) : null;
  await mkdir(o.outDir, { recursive: true });

  // The meta-loss curve(s), from metrics.jsonl.
  const values = [main, ...(twin ? [twin] : [])].flatMap((s) => s.metrics.map((m) => ({ step: m.step, metaLoss: m.metaLoss, run: s.run.name })));
  const svg = await renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Meta-loss during meta-training (${o.name}${twin ? ` and ${twin.run.name}` : ''})`,
    width: 560,
    height: 260,
    data: { values },
    transform: [{ window: [{ op: 'mean', field: 'metaLoss', as: 'smoothed' }], frame: [-10, 10], groupby: ['run'], sort: [{ field: 'step' }] }],
    layer: [
      { mark: { type: 'line', opacity: 0.25 }, encoding: { x: { field: 'step', type: 'quantitative', title: 'outer step' }, y: { field: 'metaLoss', type: 'quantitative', title: 'meta-loss (normalized training loss)', scale: { zero: false } }, color: { field: 'run', type: 'nominal' } } },
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'smoothed', type: 'quantitative' }, color: { field: 'run', type: 'nominal' } } },
    ],
  });
  const plotFile = `${o.name}-meta-loss.svg`;
  await writeFile(join(o.outDir, plotFile), svg);

  let results: BenchResults | null = null;
  if (o.benchDir) results = JSON.parse(await readFile(join(o.benchDir, 'results.json'), 'utf8')) as BenchResults;
  const learned = `lopt:${o.name}`;
  const rows = results ? evaluationRows(results, learned) : [];
  const wins = rows.filter((r) => r.wins).length;

  // The shipped checkpoint: the run's theta, with its provenance and the headline of its evaluation.
  const ckpt: Checkpoint = { ...main.theta };
  const evalSection: { [key: string]: JsonValue } = {
    metaTraining: { recipe: main.recipe.name, outerSteps: main.recipe.outerSteps, wallSeconds: Math.round(main.seconds) },
  };
  if (results) {
    evalSection['bench'] = {
      suite: results.suite,
      tasks: rows.length,
      lowerFinalLossThanEveryTunedBaseline: wins,
      perTask: rows.map((r) => ({ task: r.task.task, axis: r.task.axis, factor: r.task.factor, finalTrainLoss: r.mine.finalTrainLoss, bestTunedBaseline: r.best?.optimizer ?? null, bestTunedLoss: r.best?.finalTrainLoss ?? null })),
    };
  }
  ckpt.eval = evalSection;
  delete ckpt.training;
  const checkpoint = join(o.outDir, `${o.name}.lopt`);
  await saveCheckpoint(checkpoint, ckpt);

  const p = main.theta.provenance;
  const last50 = mean(main.metrics.slice(-50).map((m) => m.metaLoss));
  const first50 = mean(main.metrics.slice(0, 50).map((m) => m.metaLoss));
  const lines: string[] = [
    `# ${o.name}`,
    '',
    `A ${main.recipe.learnedOptimizer.arch} learned optimizer (config ${JSON.stringify(main.recipe.learnedOptimizer.config)}), meta-trained by lopt from \`meta-train/${main.recipe.name}.json\`.`,
    '',
    '```ts',
    `const lo = await loadLearnedOptimizer('${o.name}');`,
    `model.compile({ optimizer: lo.asTfjsOptimizer(), loss: 'categoricalCrossentropy' });`,
    '```',
    '',
    '## Meta-training',
    '',
    `| | |`,
    `| :--- | :--- |`,
    `| recipe | \`meta-train/${main.recipe.name}.json\` |`,
    `| command | \`npx lopt meta-train --recipe meta-train/${main.recipe.name}.json --workers 1\` |`,
    `| commit | ${p.gitCommit ?? 'unknown'} |`,
    `| backend | ${p.backend ?? 'unknown'} |`,
    `| outer steps | ${main.recipe.outerSteps} |`,
    `| wall time (sum of outer steps) | ${hours(main.seconds)} |`,
    `| meta-loss, mean of the first / last 50 outer steps | ${formatLoss(first50)} / ${formatLoss(last50)} |`,
    ...(twin ? [`| SP twin | \`meta-train/${twin.recipe.name}.json\`, ${hours(twin.seconds)}, meta-loss ${formatLoss(mean(twin.metrics.slice(0, 50).map((m) => m.metaLoss)))} → ${formatLoss(mean(twin.metrics.slice(-50).map((m) => m.metaLoss)))} |`] : []),
    '',
    `![meta-loss](${plotFile})`,
    '',
    '## Evaluation',
    '',
  ];
  if (!results) {
    lines.push('Not evaluated yet: run `lopt bench --suite generalization` with this checkpoint and rebuild the card with `--bench`.');
  } else {
    lines.push(
      `\`npx lopt bench --suite ${results.suite} --optimizers ${results.optimizers.join(',')} --seeds ${results.seeds}\` (${results.backend}; every baseline tuned over ${results.budget} learning rates, the learned optimizer one trial).`,
      '',
      `Lower final training loss than every tuned baseline on **${wins} of ${rows.length} tasks (${((100 * wins) / Math.max(rows.length, 1)).toFixed(0)}%)**; the target is 60%.`,
      '',
      '| task | axis | ×factor | this optimizer | best tuned baseline | its loss | lower? |',
      '| :--- | :--- | ---: | ---: | :--- | ---: | :---: |',
      ...rows.map((r) => `| ${r.task.task} | ${r.task.axis ?? ''} | ${r.task.factor ?? ''} | ${r.mine.diverged ? `diverged @ ${r.mine.divergedAt}` : formatLoss(r.mine.finalTrainLoss)} | ${r.best?.optimizer ?? '—'} | ${formatLoss(r.best?.finalTrainLoss ?? null)} | ${r.wins ? 'yes' : 'no'} |`),
    );
    if (twin) {
      const widest = Math.max(...results.tasks.filter((t) => t.axis === 'width').map((t) => t.factor ?? 0));
      const twinName = `lopt:${twin.run.name}`;
      const wide = results.tasks.filter((t) => t.axis === 'width' && t.factor === widest);
      lines.push('', `Against its SP twin on the widest tasks (×${widest}):`, '');
      for (const t of wide) {
        const a = resultFor(t, learned);
        const b = resultFor(t, twinName);
        lines.push(`- ${t.task}: ${o.name} ${formatLoss(a?.finalTrainLoss ?? null)}, ${twin.run.name} ${formatLoss(b?.finalTrainLoss ?? null)}`);
      }
    }
  }
  lines.push('', `Checkpoint: \`${o.name}.lopt\` (theta, architecture, config, provenance and this evaluation's headline in its \`eval\` section).`, '');
  const card = lines.join('\n');
  await writeFile(join(o.outDir, `${o.name}.md`), card);
  return { card, checkpoint };
}
