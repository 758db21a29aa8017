// The report of `lopt bench`: summary cells, plots rendered to SVG in Node, the files writeReport
// writes, and the HTML page as headless Chromium sees it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults, CurvePoint, OptimizerResult, TaskResult } from '../src/evaluate/results.js';
import { formatLr, formatLoss } from '../src/evaluate/report/format.js';
import { headlineRows } from '../src/evaluate/report/headline.js';
import { escapeHtml, reportHtml } from '../src/evaluate/report/html.js';
import { axisTasks, curveSpec, reportPlots } from '../src/evaluate/report/plots.js';
import { renderPlots, renderSvg } from '../src/evaluate/report/renderSvg.js';
import { summaryMarkdown } from '../src/evaluate/report/summaryTable.js';
import { writeReport } from '../src/evaluate/report/writeReport.js';

// ---- a synthetic but realistic bench: 3 width tasks (×1, ×4, ×16) and a language-model horizon task ----

const OPTIMIZERS = ['adam', 'nesterov', 'lamb', 'lopt:mulo-mnist'];
const STEPS = 1000;
/** Half a decade apart, as the bench's grid. */
const GRID = [-3.5, -3, -2.5, -2].map((e) => 10 ** e);

/** A smooth, deterministic decay from `start` to `end`; null from `divergedAt` on. */
function curve(start: number, end: number, tau: number, divergedAt: number | null = null): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (let step = 0; step <= STEPS; step += 10) {
    const loss = divergedAt !== null && step >= divergedAt ? null : end + (start - end) * Math.exp(-step / tau);
    points.push({ step, loss });
  }
  return points;
}

interface Run {
  final: number | null;
  lr?: number;
  speedup?: number;
  lowerBound?: boolean;
  accuracy?: number | null;
  divergedAt?: number;
}

function result(optimizer: string, run: Run, start: number): OptimizerResult {
  const learned = optimizer.startsWith('lopt:');
  const diverged = run.divergedAt !== undefined;
  const final = diverged ? null : run.final;
  return {
    optimizer,
    kind: learned ? 'learned' : 'baseline',
    tuned: !learned,
    selectedAtGridEdge: false,
    grid: learned
      ? []
      : GRID.map((lr) => ({
          lr,
          innerValidLoss: final === null ? null : final * (1 + Math.abs(Math.log10(lr / (run.lr ?? 1e-3)))),
          finalTrainLoss: final === null ? null : final * (1 + Math.abs(Math.log10(lr / (run.lr ?? 1e-3)))),
          divergedAt: null,
        })),
    selectedLr: learned ? null : (run.lr ?? null),
    diverged,
    divergedAt: run.divergedAt ?? null,
    finalTrainLoss: final,
    bestTrainLoss: final === null ? null : final * 0.99,
    testLoss: final === null ? null : final * 1.05,
    testAccuracy: diverged ? null : (run.accuracy ?? null),
    speedupOverAdam: diverged ? null : (run.speedup ?? 1),
    speedupIsLowerBound: run.lowerBound ?? false,
    curve: curve(start, final ?? start, learned ? 150 : 250, run.divergedAt ?? null),
    seconds: learned ? 12.5 : 48,
  };
}

function task(name: string, axis: string, factor: number, width: number | null, runs: Record<string, Run>, start = 2.3): TaskResult {
  const results = OPTIMIZERS.map((o) => result(o, runs[o] as Run, start));
  const adam = results.find((r) => r.optimizer === 'adam') as OptimizerResult;
  return {
    task: name,
    axis,
    factor,
    steps: STEPS,
    family: width === null ? 'transformer' : 'mlp',
    width,
    depth: width === null ? 2 : 1,
    batchSize: 128,
    parametrization: 'mup',
    results,
    adamEnvelope: adam.curve,
  };
}

const W32 = 'mlp-mnist8-w32-d1-relu-b128-mup';
const W128 = 'mlp-mnist8-w128-d1-relu-b128-mup';
const W512 = 'mlp-mnist8-w512-d1-relu-b128-mup';
const LM = 'transformer-moby-char-h25';

function benchResults(): BenchResults {
  return {
    format: 'lopt-bench',
    version: 1,
    suite: 'generalization',
    maxGridExtensions: 3,
    createdAt: '2025-01-02T03:04:05.000Z',
    backend: 'cpu',
    seeds: 3,
    budget: 4,
    optimizers: [...OPTIMIZERS],
    tasks: [
      task(W32, 'width', 1, 32, {
        adam: { final: 0.30123, lr: 10 ** -2.5, accuracy: 0.9123 },
        nesterov: { final: 0.325, lr: 1e-2, speedup: 0.71, accuracy: 0.905 },
        lamb: { final: 0.289, lr: 3e-3, speedup: 1.18, accuracy: 0.915 },
        'lopt:mulo-mnist': { final: 0.2701, speedup: 1.734, accuracy: 0.9201 },
      }),
      task(W128, 'width', 4, 128, {
        adam: { final: 0.2456, lr: 10 ** -2.5, accuracy: 0.93 },
        nesterov: { final: 0.239, lr: 1e-2, speedup: 1.08, accuracy: 0.931 },
        lamb: { final: 0.24, lr: 3e-3, speedup: 1.05, accuracy: 0.93 },
        // Adam never got this low within the run: the speedup is only a lower bound.
        'lopt:mulo-mnist': { final: 0.2123, speedup: 1, lowerBound: true, accuracy: 0.94 },
      }),
      task(W512, 'width', 16, 512, {
        adam: { final: 0.2234, lr: 1e-3, accuracy: 0.94 },
        nesterov: { final: null, lr: 1e-2, divergedAt: 120 },
        lamb: { final: 0.2302, lr: 3e-3, speedup: 0.88, accuracy: 0.938 },
        'lopt:mulo-mnist': { final: 0.2201, speedup: 1.2, accuracy: 0.941 },
      }),
      // A language model: no accuracy, losses above 1.
      task(
        LM,
        'horizon',
        25,
        null,
        {
          adam: { final: 1.8123, lr: 1e-3 },
          nesterov: { final: 1.9012, lr: 10 ** -2.5, speedup: 0.6 },
          lamb: { final: 1.7999, lr: 1e-3, speedup: 1.1 },
          'lopt:mulo-mnist': { final: 1.9555, speedup: 0.45 },
        },
        4.2,
      ),
    ],
  };
}

// ---- helpers ----

/** The cells of the markdown table row of `optimizer` under the heading of `taskName`. */
function markdownRow(markdown: string, taskName: string, optimizer: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`### ${taskName}`);
  expect(start, `heading for ${taskName}`).toBeGreaterThanOrEqual(0);
  const row = lines.slice(start + 1).find((l) => l.startsWith(`| ${optimizer} |`));
  expect(row, `row ${optimizer} of ${taskName}`).toBeDefined();
  return (row as string)
    .slice(2, -2)
    .split(' | ')
    .map((c) => c.trim());
}

function headlineRow(markdown: string, optimizer: string): string[] {
  const section = markdown.slice(markdown.indexOf('## Headline'), markdown.indexOf('## Results per task'));
  const row = section.split('\n').find((l) => l.startsWith(`| ${optimizer} |`));
  expect(row, `headline row ${optimizer}`).toBeDefined();
  return (row as string).slice(2, -2).split(' | ');
}

/**
 * Checks the SVG is one well-formed element tree rooted at <svg> (tags balanced and nested;
 * no XML parser ships with Node, and vega's output has no CDATA, comments or doctype).
 */
function expectWellFormedSvg(svg: string): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  const stack: string[] = [];
  let roots = 0;
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g)) {
    const [, closing, tag, , selfClosing] = m;
    if (closing === '/') {
      expect(stack.pop(), `closing </${tag}>`).toBe(tag);
    } else if (selfClosing !== '/') {
      if (stack.length === 0) roots += 1;
      stack.push(tag as string);
    }
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  // Everything that looks like a tag was matched by the pattern above (no stray '<').
  expect(svg.split('<').length - 1).toBe([...svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g)].length);
  expect(svg).not.toMatch(/NaN|Infinity/);
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lopt-report-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// ---- tests ----

describe('bench report: summary', () => {
  const markdown = summaryMarkdown(benchResults());

  it('formats losses with 4 significant digits and learning rates in exponent form', () => {
    expect(formatLoss(0.30123)).toBe('0.3012');
    expect(formatLoss(1.8123)).toBe('1.812');
    expect(formatLoss(null)).toBe('—');
    expect(formatLr(3e-3)).toBe('3e-3');
    expect(formatLr(10 ** -2.5)).toBe('3.2e-3');
    expect(formatLr(1e-2)).toBe('1e-2');
  });

  it('has one row per optimizer per task with the right cells', () => {
    for (const t of [W32, W128, W512, LM]) for (const o of OPTIMIZERS) markdownRow(markdown, t, o);
    expect(markdownRow(markdown, W32, 'adam')).toEqual(['adam', '3.2e-3', '0.3012', '0.2982', '0.3163', '91.23%', '1.00']);
    expect(markdownRow(markdown, W32, 'lamb')).toEqual(['lamb', '3e-3', '0.2890', '0.2861', '0.3034', '91.50%', '1.18']);
    expect(markdownRow(markdown, W32, 'lopt:mulo-mnist')).toEqual(['lopt:mulo-mnist', '—', '0.2701', '0.2674', '0.2836', '92.01%', '1.73']);
  });

  it('renders a speedup lower bound as ≥ 1.00', () => {
    expect(markdownRow(markdown, W128, 'lopt:mulo-mnist')[6]).toBe('≥ 1.00');
    expect(markdownRow(markdown, W128, 'nesterov')[6]).toBe('1.08');
  });

  it('renders a diverged run with its step and no losses', () => {
    expect(markdownRow(markdown, W512, 'nesterov')).toEqual(['nesterov', '1e-2', 'diverged @ step 120', '—', '—', '—', 'diverged @ step 120']);
  });

  it('leaves accuracy empty on a task without it', () => {
    for (const o of OPTIMIZERS) expect(markdownRow(markdown, LM, o)[5]).toBe('—');
    expect(markdownRow(markdown, LM, 'lamb')[2]).toBe('1.800');
  });

  it('counts, per non-Adam optimizer, the tasks it beat every other baseline and Adam on (divergence loses)', () => {
    const rows = headlineRows(benchResults());
    expect(rows.map((r) => r.optimizer)).toEqual(['nesterov', 'lamb', 'lopt:mulo-mnist']);
    // nesterov: wins only on ×4 (and diverged on ×16); lamb beats Adam on ×1, ×4 and the LM but
    // not nesterov on ×4; the learned optimizer wins ×1, ×4 and ×16 (nesterov's divergence there is beaten).
    expect(headlineRow(markdown, 'nesterov')).toEqual(['nesterov', 'baseline', '1 / 4', '1 / 4']);
    expect(headlineRow(markdown, 'lamb')).toEqual(['lamb', 'baseline', '2 / 4', '3 / 4']);
    expect(headlineRow(markdown, 'lopt:mulo-mnist')).toEqual(['lopt:mulo-mnist', 'learned', '3 / 4', '3 / 4']);
    expect(markdown).not.toMatch(/^\| adam \| baseline/m);
  });
});

describe('bench report: plots', () => {
  const results = benchResults();

  it('has a curve plot per task, the speedup plot and the width axis (horizon has 1 task, batch none)', () => {
    const plots = reportPlots(results);
    expect(plots.map((p) => p.name)).toEqual([`curves-${W32}`, `curves-${W128}`, `curves-${W512}`, `curves-${LM}`, 'speedup-over-adam', 'final-loss-vs-width']);
    for (const p of plots) {
      expect(p.name).toMatch(/^[a-z0-9\-_.]+$/);
      expect(p.title.length).toBeGreaterThan(0);
      expect(p.caption.length).toBeGreaterThan(0);
    }
    expect(plots[2]?.caption).toContain('nesterov (diverged @ step 120)');
  });

  it("counts the suite's baseline entry (factor 1) as every axis's ×1 point", () => {
    const withBaseline = benchResults();
    withBaseline.tasks[0] = { ...withBaseline.tasks[0]!, axis: 'baseline', factor: 1 };
    expect(axisTasks(withBaseline, 'width').map((t) => t.factor)).toEqual([1, 4, 16]);
    expect(axisTasks(withBaseline, 'horizon').map((t) => t.factor)[0]).toBe(1);
    // A baseline entry at another factor is not anyone's ×1.
    withBaseline.tasks[0] = { ...withBaseline.tasks[0]!, factor: 2 };
    expect(axisTasks(withBaseline, 'width').map((t) => t.factor)).toEqual([4, 16]);
  });

  it('uses a log loss axis only when every loss is positive', () => {
    const t = results.tasks[0] as TaskResult;
    const yScale = (spec: unknown) => JSON.stringify(spec).match(/"title":"training loss[^}]*"scale":(\{[^}]*\})/)?.[1];
    expect(yScale(curveSpec(t, OPTIMIZERS))).toBe('{"type":"log"}');
    const shifted = { ...t, results: t.results.map((r) => ({ ...r, curve: r.curve.map((p) => ({ ...p, loss: p.loss === null ? null : p.loss - 1 })) })) };
    expect(yScale(curveSpec(shifted, OPTIMIZERS))).toBe('{"type":"linear","zero":false}');
  });

  it('renders every plot to well-formed SVG with lines, size and title, skipping null losses', async () => {
    const plots = await renderPlots(results);
    expect(plots).toHaveLength(6);
    for (const p of plots) {
      expectWellFormedSvg(p.svg);
      expect(p.svg).toMatch(/<svg[^>]* width="\d+" height="\d+"/);
      expect(p.svg).toMatch(/<path /);
    }
    // The diverged nesterov curve on ×16 ends at its last finite point (step 110), marked by a cross.
    expect(plots[2]?.svg).toContain(`Training loss: ${W512}`);
    expect(plots[2]?.svg).toMatch(/aria-label="step: 110; [^"]*optimizer: nesterov"/);
    // The speedup plot's parity rule is a <line>; its labels include the lower bound.
    const speedup = plots.find((p) => p.name === 'speedup-over-adam')?.svg ?? '';
    expect(speedup).toMatch(/<line /);
    expect(speedup).toContain('≥1.00');
    expect(plots.find((p) => p.name === 'final-loss-vs-width')?.svg).toContain('Final training loss along width');
  });

  it('does not crash on a task whose every run diverged', async () => {
    const t = results.tasks[0] as TaskResult;
    const allDiverged: TaskResult = {
      ...t,
      results: t.results.map((r) => ({ ...r, diverged: true, divergedAt: 0, finalTrainLoss: null, curve: r.curve.map((p) => ({ ...p, loss: null })) })),
    };
    const svg = await renderSvg(curveSpec(allDiverged, OPTIMIZERS));
    expectWellFormedSvg(svg);
  });
});

describe('bench report: files and HTML', () => {
  it('writes summary.md, plots/*.svg and report.html', async () => {
    const dir = tempDir();
    const { markdown, html, svgs } = await writeReport(benchResults(), dir);
    expect(readFileSync(join(dir, 'summary.md'), 'utf8')).toBe(markdown);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toBe(html);
    const files = readdirSync(join(dir, 'plots')).sort();
    expect(files).toHaveLength(svgs.length);
    expect(files).toContain('speedup-over-adam.svg');
    for (const f of files) expect(f).toMatch(/^[a-z0-9\-_.]+\.svg$/);
    for (const svg of svgs) expect(html.includes(svg)).toBe(true);
    // All plots share one page: every id (vega's clip paths) is unique, and every url(#…) resolves.
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(m[1]);
    expect(markdown).toContain('![Speedup over tuned Adam](<plots/speedup-over-adam.svg>)');
    // Self-contained: no scripts, no external stylesheets, fonts or images.
    // (`url(#…)` is an SVG clip path inside the page, not a request.)
    expect(html.match(/<script|<link|@import|url\((?!#)|src="http/gi)).toBeNull();
  });

  it('escapes names from results in the HTML, markdown and file names', async () => {
    const results = benchResults();
    const evilTask = 'tasks/<img src=x onerror=alert(1)>&"q"';
    const evilOptimizer = 'lopt:/ckpt/<b>x</b>|y.json';
    results.tasks[0] = { ...(results.tasks[0] as TaskResult), task: evilTask };
    results.optimizers[3] = evilOptimizer;
    for (const t of results.tasks) for (const r of t.results) if (r.kind === 'learned') r.optimizer = evilOptimizer;
    const plots = await renderPlots(results);
    const html = reportHtml(results, plots);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain(escapeHtml(evilTask));
    expect(html).toContain(escapeHtml(evilOptimizer));
    const markdown = summaryMarkdown(results);
    expect(markdown).toContain('### tasks/\\<img src=x onerror=alert(1)\\>&"q"');
    expect(markdown).toContain('| lopt:/ckpt/\\<b\\>x\\</b\\>\\|y.json |');
    expect(plots[0]?.name).toBe('curves-tasks-img-src-x-onerror-alert-1-q');
  });
});

/** Debian's chromium; the test fails without it (CI installs it through .ci/run). */
function chromiumBinary(): string {
  const which = spawnSync('which', ['chromium'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  if (found !== '') return found;
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  throw new Error('chromium is not installed (apt-get install chromium): the report page cannot be checked in a browser');
}

describe('bench report in headless Chromium', () => {
  it('shows every plot and the summary tables', async () => {
    const dir = tempDir();
    const results = benchResults();
    const { svgs } = await writeReport(results, dir);
    const chromium = chromiumBinary();
    const run = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        // Its own profile, so parallel runs do not share (and lock) one.
        `--user-data-dir=${join(dir, 'chromium-profile')}`,
        '--virtual-time-budget=2000',
        '--dump-dom',
        pathToFileURL(join(dir, 'report.html')).href,
      ],
      { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
    );
    expect(run.error, String(run.error)).toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    const dom = run.stdout;
    expect((dom.match(/<svg[\s>]/g) ?? []).length).toBe(svgs.length);
    for (const p of reportPlots(results)) expect(dom).toContain(`id="plot-${p.name}"`);
    expect((dom.match(/<table class="summary"/g) ?? []).length).toBe(results.tasks.length);
    expect(dom).toContain('<table class="headline"');
    expect(dom).toContain('<td>diverged @ step 120</td>');
    expect(dom).toContain('<td>≥ 1.00</td>');
    expect((dom.match(/<figcaption>/g) ?? []).length).toBe(svgs.length);
  });
});
