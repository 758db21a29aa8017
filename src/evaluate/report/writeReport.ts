// Writes the report of a bench run: summary.md, plots/*.svg and report.html in one folder.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchResults } from '../results.js';
import { reportHtml } from './html.js';
import { renderPlots } from './renderSvg.js';
import { summaryMarkdown } from './summaryTable.js';

export const PLOTS_DIR = 'plots';

export async function writeReport(results: BenchResults, outDir: string): Promise<{ markdown: string; html: string; svgs: string[] }> {
  const plots = await renderPlots(results);
  // Plot names are already safe file stems (fileNames.ts), unique within the report.
  const markdown = summaryMarkdown(
    results,
    plots.map((p) => ({ title: p.title, path: `${PLOTS_DIR}/${p.name}.svg` })),
  );
  const html = reportHtml(results, plots);
  await mkdir(join(outDir, PLOTS_DIR), { recursive: true });
  await Promise.all(plots.map((p) => writeFile(join(outDir, PLOTS_DIR, `${p.name}.svg`), p.svg)));
  await writeFile(join(outDir, 'summary.md'), markdown);
  await writeFile(join(outDir, 'report.html'), html);
  return { markdown, html, svgs: plots.map((p) => p.svg) };
}
