// A shipped learned optimizer's model card, written from what produced it: the meta-training run
// folder (recipe, metrics, final theta) and, when given, a `lopt bench` results file. Nothing in
// the card is typed by hand: every number comes from those files.
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint/index.js';
import type { Checkpoint, JsonValue } from '../checkpoint/format.js';
import { familyFromSpec } from '../../tasks/families.js';
import { loadRecipe, recipeHash, type Recipe } from '../meta/recipe.js';
import { listCheckpoints, runPaths } from '../meta/runDir.js';
import { readContinuation, type Segment } from '../meta/continuation.js';
import { createLearnedOptimizer } from '../lopt/registry.js';
import { renderSvg } from './report/renderSvg.js';
import { formatLoss } from './report/format.js';
import { axisSummaries, evaluationRows, twinRows } from './cardEvaluation.js';
import type { BenchResults } from './results.js';
import { pickLowest, scoreCandidates } from './selectModel.js';
import { cardGoals, type Parametrization } from './cardGoals.js';
import { hasControlCharacters } from '../text/printable.js';

export interface CardRun {
  /** Shipped name, e.g. 'mulo-mnist' (checkpoints/<name>.lopt). */
  name: string;
  /** The run folder of the run's last segment (its recipe.json, metrics and final theta). */
  runDir?: string;
  /**
   * The continuation file of a run continued over several machines (`meta-train --continuation`):
   * the card then takes the per-step history and every segment (commit, steps, wall time) from it,
   * rather than the last run folder's metrics. With `recipe`, it needs no run folder at all.
   */
  continuation?: string;
  /** The recipe file of a continued run shipped without a run folder (its hash must be the continuation's). */
  recipe?: string;
  /** Ship this theta (e.g. the snapshot `lopt select` chose) instead of the run's final one. */
  theta?: string;
  /** The run was stopped before its recipe's outer steps (on model-selection evidence): the card says so. */
  stoppedEarly?: boolean;
  /** A `lopt select` output folder: the card shows its table, and `theta` must be the candidate it chose. */
  selectionDir?: string;
}

export interface ModelCardOptions extends CardRun {
  /** The SP twin, meta-trained with the same budget. */
  twin?: CardRun;
  /** A `lopt bench` output folder whose results include lopt:<name> (and the twin). */
  benchDir?: string;
  /** A markdown file of the authors' notes (what was measured beyond the tables, the next lever), printed as a section of the card. */
  notes?: string;
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
async function checkCommittedRecipe(source: string, recipe: Recipe): Promise<void> {
  const path = committedRecipePath(recipe.name ?? '');
  if (!existsSync(path)) return;
  const committed = (await loadRecipe(path)).recipe;
  if (recipeHash(committed) !== recipeHash(recipe)) {
    throw new Error(
      `card: the run in ${source} used a recipe named '${recipe.name}' that differs from meta-train/${recipe.name}.json; a card must name the recipe that produced it`,
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
  if (run.runDir === undefined && (run.continuation === undefined || run.recipe === undefined)) {
    throw new Error(`card: ${run.name} needs its run folder (--run), or its continuation file and recipe (--continuation with --recipe)`);
  }
  if (run.runDir !== undefined && run.recipe !== undefined)
    throw new Error(`card: ${run.name}: --recipe is for a continuation without a run folder; the run folder holds its recipe`);
  const recipeFile = run.runDir !== undefined ? runPaths(run.runDir).recipe : run.recipe!;
  const { recipe } = await loadRecipe(recipeFile);
  await checkCommittedRecipe(run.runDir ?? recipeFile, recipe);
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
    metrics = await readMetrics(run.runDir!);
  }
  const source = run.continuation ?? run.runDir!;
  const trained = metrics.at(-1)?.step ?? 0;
  if (trained === 0 || trained > recipe.outerSteps) throw new Error(`card: ${source} holds ${trained} outer steps; its recipe has ${recipe.outerSteps}`);
  if (run.stoppedEarly === true && trained === recipe.outerSteps) throw new Error(`card: ${source} ran all ${trained} outer steps; it was not stopped early`);
  if (run.stoppedEarly !== true && trained !== recipe.outerSteps) {
    throw new Error(
      `card: ${source} has not finished (${trained} of ${recipe.outerSteps} outer steps); continue it first, or ship it as stopped early (--stopped-early)`,
    );
  }
  const thetaFile = run.theta ?? (await latestTheta(run));
  const theta = await loadCheckpoint(thetaFile);
  if (theta.arch !== recipe.learnedOptimizer.arch)
    throw new Error(`card: ${thetaFile} holds a ${theta.arch}, the recipe trains a ${recipe.learnedOptimizer.arch}`);
  if ((theta.provenance.outerStep ?? 0) > trained) {
    throw new Error(`card: ${thetaFile} is from outer step ${theta.provenance.outerStep}, after the ${trained} steps ${source} holds`);
  }
  const seconds = segments.length > 0 ? segments.reduce((t, g) => t + g.seconds, 0) : metrics.reduce((t, m) => t + m.seconds, 0);
  const selection = run.selectionDir !== undefined ? await readSelection(run.selectionDir, run.theta) : null;
  return { run, recipe, metrics, trained, theta, seconds, segments, selection };
}

/** The run's latest theta: its final one, a stopped run's newest checkpoint, or the continuation file (itself a checkpoint). */
async function latestTheta(run: CardRun): Promise<string> {
  if (run.runDir === undefined) return run.continuation!;
  const final = runPaths(run.runDir).theta;
  if (existsSync(final) || run.stoppedEarly !== true) return final;
  const newest = (await listCheckpoints(run.runDir)).at(-1);
  if (newest === undefined) throw new Error(`card: ${run.runDir} holds no checkpoint to ship`);
  return newest.path;
}

/** A `lopt select` output folder's scores; the shipped theta must be the candidate it chose. */
async function readSelection(dir: string, theta: string | undefined) {
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as BenchResults;
  const candidates = results.optimizers.filter((o) => o.startsWith('lopt:')).map((o) => o.slice('lopt:'.length));
  const scores = scoreCandidates(results, candidates);
  const selected = pickLowest(scores);
  if (theta === undefined || resolve(theta) !== resolve(selected)) {
    throw new Error(`card: ${dir} selected ${selected}; ship that theta (--theta ${selected}), not ${theta ?? "the run's last one"}`);
  }
  const steps = await Promise.all(candidates.map(async (c) => (existsSync(c) ? ((await loadCheckpoint(c)).provenance.outerStep ?? null) : null)));
  return { results, scores, selected, steps };
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

/** `lopt card` flags that name one run (`twin-` prefixed for the SP twin). */
function cardRunFlags(s: RunSummary, twin: boolean): string {
  const r = s.run;
  const f = (flag: string) => (twin ? `--twin-${flag}` : `--${flag}`);
  return [
    twin ? `--twin-name ${r.name}` : `--name ${r.name}`,
    r.runDir !== undefined ? `${twin ? '--twin' : '--run'} runs/${s.recipe.name}` : `${f('recipe')} meta-train/${s.recipe.name}.json`,
    ...(r.continuation !== undefined ? [`${f('continuation')} ${r.continuation}`] : []),
    ...(r.theta !== undefined ? [`${f('theta')} ${r.theta}`] : []),
    ...(r.stoppedEarly === true ? [f('stopped-early')] : []),
    ...(r.selectionDir !== undefined ? [`${f('selection')} ${r.selectionDir}`] : []),
  ].join(' ');
}

function metaTrainLines(s: RunSummary): string[] {
  const continued = s.run.continuation === undefined ? '' : ` --continuation ${s.run.continuation}`;
  const line = `npx lopt meta-train --recipe meta-train/${s.recipe.name}.json --workers 1 --out runs/${s.recipe.name}${continued}`;
  const stopped = s.run.stoppedEarly === true ? [`#   (stopped at outer step ${s.trained} of ${s.recipe.outerSteps})`] : [];
  const sel = s.selection;
  if (sel === null || s.run.selectionDir === undefined) return [line, ...stopped];
  const candidates = sel.scores.map((c) => c.candidate);
  const dirs = [...new Set(candidates.map((c) => dirname(c)))];
  const named = dirs.length === 1 && candidates.every((c) => c.endsWith('.lopt')) ? dirs[0]! : candidates.join(' ');
  return [
    line,
    ...stopped,
    `npx lopt select --suite ${sel.results.suite} --seeds ${sel.results.seeds} --budget ${sel.results.budget} --out ${s.run.selectionDir} ${named}`,
  ];
}

/** The commands that reproduce a card: meta-training, model selection, the bench, and the card itself. */
function reproduceLines(o: ModelCardOptions, main: RunSummary, twin: RunSummary | null, results: BenchResults | null): string[] {
  const benchOut = o.benchDir ?? (results ? `runs/bench-${results.suite}` : null);
  const card = [
    `npx lopt card ${cardRunFlags(main, false)}`,
    ...(twin ? [` ${cardRunFlags(twin, true)}`] : []),
    ...(benchOut !== null && results ? [` --bench ${benchOut}`] : []),
    ...(o.notes !== undefined ? [` --notes ${o.notes}`] : []),
  ].join('');
  return [
    '```sh',
    ...metaTrainLines(main),
    ...(twin ? metaTrainLines(twin) : []),
    ...(results
      ? [
          `npx lopt bench --suite ${results.suite} --optimizers ${results.optimizers.join(',')} --budget ${results.budget} --seeds ${results.seeds} --out ${benchOut}`,
        ]
      : []),
    card,
    '```',
  ];
}

/** The model-selection table: every candidate's score and per-task ratios, the shipped one in bold. */
function selectionLines(s: RunSummary): string[] {
  const sel = s.selection;
  if (sel === null) return [];
  const tasks = sel.results.tasks.map((t) => t.task);
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'diverged');
  return [
    '## Model selection',
    '',
    `\`lopt select\` on the \`${sel.results.suite}\` suite (meta-validation tasks, none of them in the generalization suite; ${sel.results.backend}, ${sel.results.seeds} seed${sel.results.seeds > 1 ? 's' : ''}): each candidate theta one trial beside Adam tuned over ${sel.results.budget} learning rates. Score: the geometric mean over the tasks of final training loss / tuned Adam's (lower is better). Shipped: the lowest, in bold.`,
    '',
    `| candidate | outer step | score | ${tasks.join(' | ')} |`,
    `| :--- | ---: | ---: | ${tasks.map(() => '---:').join(' | ')} |`,
    ...sel.scores.map((c, i) => {
      const b = (x: string) => (c.candidate === sel.selected ? `**${x}**` : x);
      return `| ${b(basename(c.candidate))} | ${sel.steps[i] ?? '—'} | ${b(f(c.score))} | ${c.ratios.map(f).join(' | ')} |`;
    }),
    '',
  ];
}

/** How to load it into model.fit: μP models pass their per-tensor scales, fraction features the planned steps. */
function usageLines(name: string, config: Checkpoint['config']): string[] {
  const mup = config['mup'] !== false;
  const fraction = config['fractionFeatures'] === true;
  const options = [...(mup ? ['mupScale: mupScaleFor(model)'] : []), ...(fraction ? ['totalSteps: epochs * stepsPerEpoch'] : [])];
  return [
    '```ts',
    `import { loadLearnedOptimizer${mup ? ', mupMlp, mupScaleFor' : ''} } from 'lopt';`,
    `const lo = await loadLearnedOptimizer('${name}');`,
    ...(mup ? ['const model = mupMlp({ inputs: 64, hidden: [1024], outputs: 10 }); // a μP model'] : []),
    ...(fraction ? ['// It reads the fraction of training done: tell it how many steps the run will take.'] : []),
    `model.compile({ optimizer: lo.asTfjsOptimizer(${options.length > 0 ? `{ ${options.join(', ')} }` : ''}), loss: 'categoricalCrossentropy' });`,
    '```',
  ];
}

/** The authors' notes: plain markdown, printed as text (no raw HTML, no control characters). */
async function readNotes(path: string): Promise<string> {
  const text = await readFile(path, 'utf8');
  if (text.length > 64_000) throw new Error(`card: --notes ${path} is ${text.length} characters; at most 64000 are allowed`);
  // Line breaks (LF or CRLF) and tabs are text; any other control character is not.
  if (hasControlCharacters(text.replace(/\r\n|\n|\t/g, ' '))) throw new Error(`card: --notes ${path} holds control characters; plain markdown text is allowed`);
  if (/<[a-zA-Z!/]/.test(text)) throw new Error(`card: --notes ${path} holds HTML; plain markdown text is allowed`);
  return text.trim();
}

function evaluationLines(o: ModelCardOptions, results: BenchResults, twin: RunSummary | null, own: Parametrization): string[] {
  const learned = `lopt:${o.name}`;
  const rows = evaluationRows(results, learned);
  const wins = rows.filter((r) => r.wins).length;
  const ownRows = rows.filter((r) => r.task.parametrization === own);
  const ownWins = ownRows.filter((r) => r.wins).length;
  const tr = twin ? twinRows(results, learned, `lopt:${twin.run.name}`) : [];
  const goals = cardGoals(rows, own, twin ? tr : null);
  const lines = [
    `\`lopt bench\` on the \`${results.suite}\` suite (${results.backend}, ${results.seeds} seed${results.seeds > 1 ? 's' : ''}): every tuned baseline (${results.optimizers.filter((n) => !n.startsWith('lopt:')).join(', ')}) gets ${results.budget} learning rates half a decade apart, extended past an edge up to ${results.maxGridExtensions} times, the same schedule and seeds, selected on inner-valid loss; the learned optimizer gets one trial.`,
    '',
    `**Lower final training loss than every tuned baseline on ${wins} of ${rows.length} tasks (${pct(wins, rows.length)})**; on the tasks of its own parametrization (${own === 'mup' ? 'μP' : 'SP'}): ${ownWins} of ${ownRows.length} (${pct(ownWins, ownRows.length)}).`,
    '',
    `### Goals: ${goals.filter((g) => g.met).length} of ${goals.length} met`,
    '',
    '| goal | measured | met? |',
    '| :--- | :--- | :---: |',
    ...goals.map((g) => `| ${g.goal} | ${g.measured} | ${g.met ? 'yes' : '**no**'} |`),
    '',
    '### Per axis and per task (every task it ran on, both parametrizations)',
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
  const notes = o.notes !== undefined ? await readNotes(o.notes) : null;
  await mkdir(o.outDir, { recursive: true });
  const own = await writeOne(o.name, main, results, o, twin, null, notes);
  if (!twin || !o.twin) return own;
  // The twin ships beside it, with its own card (without a comparison of its own).
  const twinCard = await writeOne(
    o.twin.name,
    twin,
    results?.optimizers.includes(`lopt:${o.twin.name}`) ? results : null,
    { ...o.twin, outDir: o.outDir, ...(o.benchDir ? { benchDir: o.benchDir } : {}) },
    null,
    o.name,
    null,
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
  notes: string | null,
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
      outerSteps: s.trained,
      plannedOuterSteps: s.recipe.outerSteps,
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
    ...usageLines(name, s.theta.config),
    '',
    '## Meta-training',
    '',
    `| | |`,
    `| :--- | :--- |`,
    `| recipe | \`meta-train/${s.recipe.name}.json\` |`,
    `| commit | ${p.gitCommit ?? 'unknown'} |`,
    `| backend | ${p.backend ?? 'unknown'} |`,
    `| outer steps | ${s.trained} |`,
    ...(s.trained !== s.recipe.outerSteps ? [`| stopped early | at outer step ${s.trained} of the recipe's ${s.recipe.outerSteps} |`] : []),
    ...(s.theta.provenance.outerStep !== undefined && s.theta.provenance.outerStep !== s.trained
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
      ? evaluationLines({ ...o, name }, results, twin, s.theta.config['mup'] === false ? 'sp' : 'mup')
      : ['Not evaluated yet: run `lopt bench --suite generalization` with this checkpoint and rebuild the card with `--bench`.']),
    '',
    ...selectionLines(s),
    ...(notes !== null ? ['## Notes', '', notes, ''] : []),
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
