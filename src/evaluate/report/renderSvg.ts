// Renders a vega-lite spec to an SVG string in Node: no browser and no canvas (text widths are estimated).
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BenchResults } from '../results.js';
import { reportPlots, type PlotSpec } from './plots.js';

export interface RenderedPlot extends PlotSpec {
  svg: string;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    // Releases the view's dataflow and timers so many renders do not accumulate.
    view.finalize();
  }
}

/**
 * Prefixes every id in the SVG, and the `url(#id)` / `href="#id"` references to it, with `prefix`:
 * the report inlines all plots into one page, where ids must be unique, and vega numbers its clip
 * paths per process (a second report rendered elsewhere would restart at the same numbers).
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
  if (ids.size === 0) return svg;
  const scoped = (id: string) => (ids.has(id) ? `${prefix}-${id}` : id);
  return svg.replace(/(\sid=")([^"]+)"|url\(#([^)]+)\)|(href=")#([^"]+)"/g, (match, idAttr, id, urlId, hrefAttr, hrefId) => {
    if (idAttr !== undefined) return `${idAttr}${scoped(id)}"`;
    if (urlId !== undefined) return `url(#${scoped(urlId)})`;
    if (hrefAttr !== undefined) return `${hrefAttr}#${scoped(hrefId)}"`;
    return match;
  });
}

/** Every plot of the report rendered, one after another (vega views are cheap; keeps memory flat). */
export async function renderPlots(results: BenchResults): Promise<RenderedPlot[]> {
  const rendered: RenderedPlot[] = [];
  for (const plot of reportPlots(results)) rendered.push({ ...plot, svg: scopeSvgIds(await renderSvg(plot.spec), plot.name) });
  return rendered;
}
