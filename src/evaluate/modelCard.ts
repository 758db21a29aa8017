// A shipped learned optimizer's model card, written from what produced it: the meta-training run
// folder (recipe, metrics, final theta) and, when given, a `lopt bench` results file. Nothing in
// the card is typed by hand: every number comes from those files.
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/index.js';
import type { Checkpoint, JsonValue } from '../checkpoint/format.js';
import { familyFromSpec } from '../../tasks/families.js';
import { loadRecipe, recipeHash, type Recipe } from '../meta/recipe.js';
import { runPaths } from '../meta/runDir.js';
import { readContinuation, type Segment } from '../meta/continuation.js';
import { createLearnedOptimizer } from '../lopt/registry.js';
import { renderSvg } from './report/renderSvg.js';
import { formatLoss } from './report/format.js';
import { axisSummaries, evaluationRows, twinRows } from './cardEvaluation.js';
import type { BenchResults } from './results.js';

export interface CardRun {
  /** Shipped name, e.g. 'mulo-mnist' (checkpoints/<name>.lopt). */
  name: string;
  /** The run folder of the run's last segment (its recipe.json and final theta). */
  runDir: string;
  /**
   * The continuation file of a run continued over several machines (`meta-train --continuation`):
   * the card then takes the per-step history and every segment (commit, steps, wall time) from it,
   * rather than the last run folder's metrics.
   */
  continuation?: string;
  /** Ship this theta (e.g. the snapshot `lopt select` chose) instead of the run's final one. */
  theta?: string;
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
  metaGradNorm: number;
  seconds: number;
}

/** Outer steps whose meta-loss and meta-gradient norm the checkpoint records, so a re-run from the recipe can be checked against them. */
export const RECORDED_FIRST_STEPS = 3;

async function readMetrics(runDir: string): Promise<MetricsLine[]> {
  const text = await readFile(runPaths(runDir).metrics, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as MetricsLine);
}

/** The package's meta-train/ folder (from src/ or dist/src/). */
function committedRecipePath(name: string): string {
  const up = import.meta.url.includes('/dist/') ? '../../../' : '../../';
  return fileURLToPath(new URL(`${up}meta-train/${name}.json`, import.meta.url));
}

/** A card names `meta-train/<name>.json` as its recipe: when that file exists, the run must have used it. */
async function checkCommittedRecipe(runDir: string, recipe: Recipe): Promise<void> {
  const path = committedRecipePath(recipe.name ?? '');
  if (!existsSync(path)) return;
  const committed = (await loadRecipe(path)).recipe;
  if (recipeHash(committed) !== recipeHash(recipe)) {
    throw new Error(
      `card: the run in ${runDir} used a recipe named '${recipe.name}' that differs from meta-train/${recipe.name}.json; a card must name the recipe that produced it`,
    );
  }
}

/** What the optimizer saw during meta-training, one line per estimator. */
function trainingDistribution(recipe: Recipe): string[] {
  return recipe.estimators.map((e) => {
    const episodes = 'steps' in e.episodeLength ? `${e.episodeLength.steps}` : `${e.episodeLength.min}–${e.episodeLength.max} (log-uniform)`;
    const truncation = e.type === 'full-es' ? '' : `, truncations of ${e.truncationLength}`;
    return `- ${e.type} on ${familyFromSpec(e.family).name}: ${e.particles} particles, episodes of ${episodes} steps${truncation}`;
  });
}

async function runSummary(run: CardRun) {
  const { recipe } = await loadRecipe(runPaths(run.runDir).recipe);
  await checkCommittedRecipe(run.runDir, recipe);
  let metrics: MetricsLine[];
  let segments: Segment[] = [];
  if (run.continuation !== undefined) {
    const lo = createLearnedOptimizer(recipe.learnedOptimizer.arch, recipe.learnedOptimizer.config);
    const continued = await readContinuation(run.continuation, lo, recipeHash(recipe));
    if (continued === null) throw new Error(`card: continuation file ${run.continuation} does not exist`);
    const h = continued.history;
    metrics = h.metaLoss.map((metaLoss, i) => ({ step: i + 1, metaLoss, metaGradNorm: h.metaGradNorm[i]!, seconds: h.seconds[i]! }));
    segments = continued.segments;
  } else {
    metrics = await readMetrics(run.runDir);
  }
  const source = run.continuation ?? run.runDir;
  if (metrics.length === 0 || metrics.at(-1)!.step !== recipe.outerSteps) {
    throw new Error(`card: ${source} has not finished (${metrics.at(-1)?.step ?? 0} of ${recipe.outerSteps} outer steps); continue it first`);
  }
  const theta = await loadCheckpoint(run.theta ?? runPaths(run.runDir).theta);
  if (theta.arch !== recipe.learnedOptimizer.arch)
    throw new Error(`card: ${run.theta} holds a ${theta.arch}, the recipe trains a ${recipe.learnedOptimizer.arch}`);
  const seconds = segments.length > 0 ? segments.reduce((t, g) => t + g.seconds, 0) : metrics.reduce((t, m) => t + m.seconds, 0);
  return { run, recipe, metrics, theta, seconds, segments };
}

/** The segments of a continued run: where and how long each stretch of meta-training ran. */
function segmentLines(segments: Segment[]): string[] {
  if (segments.length === 0) return [];
  return [
    '| segment | commit | outer steps | wall time | backend |',
    '| ---: | :--- | :--- | ---: | :--- |',
    ...segments.map((g, i) => `| ${i + 1} | ${g.commit.slice(0, 12)} | ${g.fromStep} → ${g.toStep} | ${hours(g.seconds)} | ${g.backend} |`),
    '',
  ];
}

function continuationFlag(s: { run: CardRun }): string {
  return s.run.continuation === undefined ? '' : ` --continuation ${s.run.continuation}`;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function hours(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type RunSummary = Awaited<ReturnType<typeof runSummary>>;

function metaLossPlot(name: string, runs: RunSummary[]) {
  const values = runs.flatMap((s) => s.metrics.map((m) => ({ step: m.step, metaLoss: m.metaLoss, run: s.run.name })));
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Meta-loss during meta-training (${runs.map((r) => r.run.name).join(' and ')})`,
    width: 560,
    height: 260,
    data: { values },
    transform: [{ window: [{ op: 'mean', field: 'metaLoss', as: 'smoothed' }], frame: [-10, 10], groupby: ['run'], sort: [{ field: 'step' }] }],
    layer: [
      {
        mark: { type: 'line', opacity: 0.25 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'outer step' },
          y: { field: 'metaLoss', type: 'quantitative', title: 'meta-loss (normalized training loss)', scale: { zero: false } },
          color: { field: 'run', type: 'nominal', legend: { labelLimit: 400 } },
        },
      },
      {
        mark: { type: 'line', strokeWidth: 2 },
        encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'smoothed', type: 'quantitative' }, color: { field: 'run', type: 'nominal' } },
      },
    ],
  }).then((svg) => ({ file: `${name}-meta-loss.svg`, svg }));
}

const pct = (n: number, of: number) => `${((100 * n) / Math.max(of, 1)).toFixed(0)}%`;
const ratioText = (r: number | null) => (r === null ? '—' : `${r.toFixed(2)}×`);

/** The commands that reproduce a card: meta-training, the bench, and the card itself. */
function reproduceLines(o: ModelCardOptions, main: RunSummary, twin: RunSummary | null, results: BenchResults | null): string[] {
  const runOf = (s: RunSummary) => `runs/${s.recipe.name}`;
  const benchOut = results ? `runs/bench-${results.suite}` : null;
  const card = [
    `npx lopt card --name ${o.name} --run ${runOf(main)}`,
    ...(twin ? [` --twin-name ${twin.run.name} --twin ${runOf(twin)}`] : []),
    ...(benchOut ? [` --bench ${benchOut}`] : []),
  ].join('');
  return [
    '```sh',
    `npx lopt meta-train --recipe meta-train/${main.recipe.name}.json --workers 1 --out ${runOf(main)}${continuationFlag(main)}`,
    ...(twin ? [`npx lopt meta-train --recipe meta-train/${twin.recipe.name}.json --workers 1 --out ${runOf(twin)}${continuationFlag(twin)}`] : []),
    ...(results
      ? [
          `npx lopt bench --suite ${results.suite} --optimizers ${results.optimizers.join(',')} --budget ${results.budget} --seeds ${results.seeds} --out ${benchOut}`,
        ]
      : []),
    card,
    '```',
  ];
}

function evaluationLines(o: ModelCardOptions, results: BenchResults, twin: RunSummary | null): string[] {
  const learned = `lopt:${o.name}`;
  const rows = evaluationRows(results, learned);
  const wins = rows.filter((r) => r.wins).length;
  const lines = [
    `\`lopt bench\` on the \`${results.suite}\` suite (${results.backend}, ${results.seeds} seed${results.seeds > 1 ? 's' : ''}): every tuned baseline (${results.optimizers.filter((n) => !n.startsWith('lopt:')).join(', ')}) gets ${results.budget} learning rates half a decade apart, extended past an edge up to ${results.maxGridExtensions} times, the same schedule and seeds, selected on inner-valid loss; the learned optimizer gets one trial.`,
    '',
    `**Lower final training loss than every tuned baseline on ${wins} of ${rows.length} tasks (${pct(wins, rows.length)}).** The target was 60%: ${wins / Math.max(rows.length, 1) >= 0.6 ? 'met' : 'not met'}.`,
    '',
    '| axis | tasks | lower than every tuned baseline | final loss / best tuned (geometric mean) | diverged |',
    '| :--- | ---: | ---: | ---: | ---: |',
    ...axisSummaries(rows).map((a) => `| ${a.axis} | ${a.tasks} | ${a.wins} | ${ratioText(a.geoMeanRatio)} | ${a.diverged} |`),
    '',
    '| task | axis | ×factor | steps | this optimizer | best tuned baseline | its loss | ratio | lower? |',
    '| :--- | :--- | ---: | ---: | ---: | :--- | ---: | ---: | :---: |',
    ...rows.map(
      (r) =>
        `| ${r.task.task} | ${r.task.axis ?? ''} | ${r.task.factor ?? ''} | ${r.task.steps} | ${r.mine.diverged ? `diverged @ ${r.mine.divergedAt}` : formatLoss(r.mine.finalTrainLoss)} | ${r.best?.optimizer ?? '—'} | ${formatLoss(r.best?.finalTrainLoss ?? null)} | ${ratioText(r.ratio)} | ${r.wins ? 'yes' : 'no'} |`,
    ),
    '',
    'Final training loss: the smoothed training loss at the last step. The full report (curves, test loss and accuracy, speedups over Adam) is written by the bench command below.',
  ];
  if (twin) {
    const tr = twinRows(results, learned, `lopt:${twin.run.name}`);
    if (tr.length > 0) {
      const widest = tr.at(-1)!;
      lines.push(
        '',
        `### μP against its SP twin (${twin.run.name})`,
        '',
        `Each learned optimizer on the tasks of its own parametrization (the μP optimizer on the μP MLP, the SP twin on the SP MLP), one trial each, final training loss. At the widest width (×${widest.factor}) ${o.name} is ${widest.wins ? '**lower**' : '**not lower**'}.`,
        '',
        `| width | ×factor | ${o.name} on μP | ${twin.run.name} on SP | lower? | ${o.name} on SP | ${twin.run.name} on μP |`,
        '| ---: | ---: | ---: | ---: | :---: | ---: | ---: |',
        ...tr.map(
          (r) =>
            `| ${r.width ?? ''} | ${r.factor} | ${formatLoss(r.mupOnMup)} | ${formatLoss(r.spOnSp)} | ${r.wins ? 'yes' : 'no'} | ${formatLoss(r.mupOnSp)} | ${formatLoss(r.spOnMup)} |`,
        ),
      );
    }
  }
  return lines;
}

export interface ModelCard {
  card: string;
  checkpoint: string;
}

export async function writeModelCard(o: ModelCardOptions): Promise<ModelCard & { twin?: ModelCard }> {
  const main = await runSummary(o);
  const twin = o.twin ? await runSummary(o.twin) : null;
  const results: BenchResults | null = o.benchDir ? (JSON.parse(await readFile(join(o.benchDir, 'results.json'), 'utf8')) as BenchResults) : null;
  if (results && !results.optimizers.includes(`lopt:${o.name}`)) {
    throw new Error(`card: ${o.benchDir}/results.json has no results for lopt:${o.name} (it has ${results.optimizers.join(', ')})`);
  }
  await mkdir(o.outDir, { recursive: true });
  const own = await writeOne(o.name, main, results, o, twin, null);
  if (!twin || !o.twin) return own;
  // The twin ships beside it, with its own card (without a comparison of its own).
  const twinCard = await writeOne(
    o.twin.name,
    twin,
    results?.optimizers.includes(`lopt:${o.twin.name}`) ? results : null,
    { ...o.twin, outDir: o.outDir, ...(o.benchDir ? { benchDir: o.benchDir } : {}) },
    null,
    o.name,
  );
  return { ...own, twin: twinCard };
}

async function writeOne(
  name: string,
  s: RunSummary,
  results: BenchResults | null,
  o: ModelCardOptions,
  twin: RunSummary | null,
  twinOf: string | null,
): Promise<ModelCard> {
  const plot = await metaLossPlot(name, [s, ...(twin ? [twin] : [])]);
  await writeFile(join(o.outDir, plot.file), plot.svg);

  // The shipped checkpoint: the run's theta, with its provenance and the headline of its evaluation.
  const learned = `lopt:${name}`;
  const rows = results ? evaluationRows(results, learned) : [];
  const ckpt: Checkpoint = { ...s.theta };
  const evalSection: { [key: string]: JsonValue } = {
    metaTraining: {
      recipe: s.recipe.name ?? null,
      outerSteps: s.recipe.outerSteps,
      wallSeconds: Math.round(s.seconds),
      firstSteps: s.metrics.slice(0, RECORDED_FIRST_STEPS).map((m) => ({ step: m.step, metaLoss: m.metaLoss, metaGradNorm: m.metaGradNorm })),
    },
  };
  if (results) {
    evalSection['bench'] = {
      suite: results.suite,
      tasks: rows.length,
      lowerFinalLossThanEveryTunedBaseline: rows.filter((r) => r.wins).length,
      perTask: rows.map((r) => ({
        task: r.task.task,
        axis: r.task.axis,
        factor: r.task.factor,
        steps: r.task.steps,
        finalTrainLoss: r.mine.finalTrainLoss,
        bestTunedBaseline: r.best?.optimizer ?? null,
        bestTunedLoss: r.best?.finalTrainLoss ?? null,
      })),
    };
  }
  ckpt.eval = evalSection;
  delete ckpt.training;
  const checkpoint = join(o.outDir, `${name}.lopt`);
  await saveCheckpoint(checkpoint, ckpt);

  const p = s.theta.provenance;
  const first50 = mean(s.metrics.slice(0, 50).map((m) => m.metaLoss));
  const last50 = mean(s.metrics.slice(-50).map((m) => m.metaLoss));
  const lines: string[] = [
    `# ${name}`,
    '',
    `A ${s.recipe.learnedOptimizer.arch} learned optimizer (config ${JSON.stringify(s.recipe.learnedOptimizer.config)}), meta-trained by lopt from \`meta-train/${s.recipe.name}.json\`.`,
    ...(twinOf
      ? [
          '',
          `The SP twin of [${twinOf}](${twinOf}.md), meta-trained the same way on standard-parametrization tasks, shipped for the μP comparison in that card.`,
        ]
      : []),
    '',
    '```ts',
    `import { loadLearnedOptimizer } from 'lopt';`,
    `const lo = await loadLearnedOptimizer('${name}');`,
    `model.compile({ optimizer: lo.asTfjsOptimizer(), loss: 'categoricalCrossentropy' });`,
    '```',
    '',
    '## Meta-training',
    '',
    `| | |`,
    `| :--- | :--- |`,
    `| recipe | \`meta-train/${s.recipe.name}.json\` |`,
    `| commit | ${p.gitCommit ?? 'unknown'} |`,
    `| backend | ${p.backend ?? 'unknown'} |`,
    `| outer steps | ${s.recipe.outerSteps} |`,
    ...(s.theta.provenance.outerStep !== undefined && s.theta.provenance.outerStep !== s.recipe.outerSteps
      ? [`| shipped theta | outer step ${s.theta.provenance.outerStep} (chosen by model selection, \`lopt select\`) |`]
      : []),
    `| wall time (sum of outer-step times) | ${hours(s.seconds)}${s.segments.length > 0 ? `, in ${s.segments.length} segment${s.segments.length > 1 ? 's' : ''} (below)` : ''} |`,
    `| outer step time, median / min | ${median(s.metrics.map((m) => m.seconds)).toFixed(1)} s / ${Math.min(...s.metrics.map((m) => m.seconds)).toFixed(1)} s |`,
    `| meta-loss, mean of the first / last 50 outer steps | ${formatLoss(first50)} / ${formatLoss(last50)} |`,
    `| outer optimizer | AdamW, lr ${s.recipe.outer.peakLr} → ${s.recipe.outer.endLr} (warmup ${s.recipe.outer.warmupSteps}), weight decay ${s.recipe.outer.weightDecay}, meta-gradient clipped to norm ${s.recipe.outer.clipGlobalNorm} |`,
    ...(twin
      ? [
          `| SP twin | \`meta-train/${twin.recipe.name}.json\`, ${hours(twin.seconds)}, meta-loss ${formatLoss(mean(twin.metrics.slice(0, 50).map((m) => m.metaLoss)))} → ${formatLoss(mean(twin.metrics.slice(-50).map((m) => m.metaLoss)))} |`,
        ]
      : []),
    '',
    ...segmentLines(s.segments),
    `![meta-loss](${plot.file})`,
    '',
    'The meta-training distribution (the generalization suite below measures everything else):',
    '',
    ...trainingDistribution(s.recipe),
    '',
    '## Evaluation',
    '',
    ...(results
      ? evaluationLines({ ...o, name }, results, twin)
      : ['Not evaluated yet: run `lopt bench --suite generalization` with this checkpoint and rebuild the card with `--bench`.']),
    '',
    '## Reproduce',
    '',
    'Same seeds, backend and commit → the same numbers; later commits may differ in float rounding (the meta-training run also resumes exactly from its checkpoints):',
    '',
    ...(twinOf ? ['See the commands in ' + `[${twinOf}](${twinOf}.md).`] : reproduceLines({ ...o, name }, s, twin, results)),
    '',
    `Checkpoint: \`${name}.lopt\` (theta, architecture, config, provenance and this evaluation's headline in its \`eval\` section).`,
    '',
  ];
  const card = lines.join('\n');
  await writeFile(join(o.outDir, `${name}.md`), card);
  return { card, checkpoint };
}
