// The report as one self-contained HTML page: inline CSS and inline SVGs, no scripts, no fonts,
// no external requests, so it opens from disk or as a CI artifact anywhere.
import type { BenchResults } from '../results.js';
import { headlineRows, optimizerOrder } from './headline.js';
import { BATCH_STUDY_NOTE, batchTable, batchWorkloads } from './batchStudy.js';
import type { RenderedPlot } from './renderSvg.js';
import { HEADLINE_COLUMNS, HEADLINE_NOTE, headlineCells, SUMMARY_COLUMNS, taskSummaries } from './summaryTable.js';

/** Escapes text for HTML content and double-quoted attributes: names from results can hold anything. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; } h3 { margin-bottom: 0.2rem; }
.meta, .note, .setting { color: #555; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; }
th { background: #f4f4f4; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; font-family: ui-monospace, monospace; }
table.headline td:nth-child(2) { text-align: left; }
tr.learned td:first-child { font-weight: bold; }
tr.diverged td { color: #b00; }
figure { margin: 1.5rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 0.9rem; margin-top: 0.3rem; }
`;

function table(className: string, header: readonly string[], rows: { cells: string[]; classes: string[] }[], label: string): string {
  const head = `<tr>${header.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows
    .map((r) => `<tr${r.classes.length > 0 ? ` class="${r.classes.join(' ')}"` : ''}>${r.cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table class="${className}" aria-label="${escapeHtml(label)}">\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/**
 * The page. `plots` are the rendered plots (vega's SVG output escapes its own text); each is shown
 * inline with its caption.
 */
export function reportHtml(results: BenchResults, plots: RenderedPlot[]): string {
  const headline = headlineRows(results);
  const summaries = taskSummaries(results);
  const parts: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>lopt bench: ${escapeHtml(results.suite)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<h1>lopt bench: ${escapeHtml(results.suite)}</h1>`,
    `<p class="meta">${results.tasks.length} tasks · ${results.seeds} seeds · ${results.budget} learning rates per tuned baseline, half a decade apart (extended by two past an end holding the optimum, at most ${results.maxGridExtensions ?? 0} times) · ` +
      `backend ${escapeHtml(results.backend)} · ${escapeHtml(results.createdAt)}</p>`,
    '<section id="headline">',
    '<h2>Headline</h2>',
    `<p class="note">${escapeHtml(HEADLINE_NOTE)}</p>`,
    table(
      'headline',
      HEADLINE_COLUMNS,
      headline.map((h) => ({ cells: headlineCells(h), classes: [h.kind] })),
      'headline',
    ),
    '</section>',
    '<section id="summary">',
    '<h2>Results per task</h2>',
    '<p class="note">Losses: smoothed training loss, mean over seeds. Speedup: steps tuned Adam needs to reach the final ' +
      'training loss, over the steps taken (≥ where Adam never reached it).</p>',
  ];
  results.tasks.forEach((task, i) => {
    const s = summaries[i];
    if (s === undefined) return;
    parts.push(
      `<h3>${escapeHtml(s.task)}</h3>`,
      `<p class="setting">${escapeHtml(s.description)}</p>`,
      table(
        'summary',
        SUMMARY_COLUMNS,
        s.rows.map((cells, j) => {
          const r = task.results[j];
          return { cells, classes: r === undefined ? [] : [r.kind, ...(r.diverged ? ['diverged'] : [])] };
        }),
        `results on ${s.task}`,
      ),
      ...(s.metrics === null ? [] : [`<p class="metrics">${escapeHtml(s.metrics)}</p>`]),
    );
  });
  parts.push('</section>');
  const workloads = batchWorkloads(results);
  if (workloads.length > 0) {
    parts.push('<section id="batch-study">', '<h2>Batch-size study</h2>', `<p class="note">${escapeHtml(BATCH_STUDY_NOTE)}</p>`);
    for (const w of workloads) {
      const { header, rows } = batchTable(w, optimizerOrder(results));
      parts.push(
        `<h3>${escapeHtml(w.workload)}</h3>`,
        `<p class="setting">Target training loss: ${w.target === null ? 'none' : w.target.toFixed(4)}</p>`,
        table(
          'batch-study',
          header,
          rows.map((cells) => ({ cells, classes: [] })),
          `batch-size study of ${w.workload}`,
        ),
      );
    }
    parts.push('</section>');
  }
  parts.push('<section id="plots">', '<h2>Plots</h2>');
  for (const p of plots) {
    parts.push(
      `<figure id="plot-${escapeHtml(p.name)}">`,
      p.svg,
      `<figcaption><strong>${escapeHtml(p.title)}.</strong> ${escapeHtml(p.caption)}</figcaption>`,
      '</figure>',
    );
  }
  parts.push('</section>', '</body>', '</html>');
  return `${parts.join('\n')}\n`;
}
