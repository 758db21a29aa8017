// Number and duration formatting shared by the meta-train dashboard and the plain log reporter,
// so both show the same figures the same way.

/** 'nan', 'inf', '-inf' for values that are not finite: a diverged loss must still print. */
function nonFinite(x: number): string | null {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return null;
}

/** A loss: 4 decimals in the usual range (1.2345), scientific outside it (3.142e-5, 1.200e+6). */
export function formatLoss(x: number): string {
  const special = nonFinite(x);
  if (special !== null) return special;
  const magnitude = Math.abs(x);
  if (x === 0 || (magnitude >= 1e-3 && magnitude < 1e5)) return x.toFixed(4);
  return x.toExponential(3);
}

/**
 * A scale such as a gradient norm or σ: three significant digits without trailing zeros (0.12, 0.01,
 * 42.5), scientific when tiny or huge (2.5e-5) so that it never prints as 0.00.
 */
export function formatScalar(x: number): string {
  const special = nonFinite(x);
  if (special !== null) return special;
  const magnitude = Math.abs(x);
  if (x === 0) return '0';
  if (magnitude < 1e-3 || magnitude >= 1e5) return trimExponent(x.toExponential(1));
  // Number(...) drops the trailing zeros toPrecision leaves (0.120 → 0.12).
  return String(Number(x.toPrecision(3)));
}

/** A learning rate: always scientific with one decimal (3.0e-3), the way learning rates are read. */
export function formatLearningRate(x: number): string {
  const special = nonFinite(x);
  if (special !== null) return special;
  return trimExponent(x.toExponential(1));
}

/** A throughput: whole numbers from 100 up (1234), one decimal below (12.5), no thousands separators. */
export function formatRate(x: number): string {
  const special = nonFinite(x);
  if (special !== null) return special;
  return Math.abs(x) >= 100 ? String(Math.round(x)) : x.toFixed(1);
}

/** toExponential writes '3.0e-3' already; it writes positive exponents as 'e+5', which we keep short: 'e5'. */
function trimExponent(s: string): string {
  return s.replace('e+', 'e');
}

/**
 * A duration in compact form: '0.42s', '12s', '5m12s', '2h03m', '3d04h'. Two units at most: an ETA
 * of several hours does not need its seconds.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(s < 1 ? 2 : 1)}s`;
  const total = Math.round(s);
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d${two(hours)}h`;
  if (hours > 0) return `${hours}h${two(minutes)}m`;
  if (minutes > 0) return `${minutes}m${two(secs)}s`;
  return `${secs}s`;
}

/** An ETA, or '-' while it is not known yet (before the first step finishes). */
export function formatEta(seconds: number | null): string {
  return seconds === null ? '-' : formatDuration(seconds);
}

/** A text progress bar of `width` cells: '█████░░░░░'. */
export function progressBar(done: number, total: number, width: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

/** A percentage with no decimals, '42%'; floored so that 100% means really done. */
export function formatPercent(done: number, total: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  return `${Math.floor(fraction * 100)}%`;
}

/** How long ago a worker was last heard from: '1.2s ago', '5m12s ago'. */
export function formatAgo(seconds: number): string {
  return `${formatDuration(seconds)} ago`;
}

/** What the queue's workers add up to; the dashboard's total row and the log's workers line. */
export function workerTotals(workers: readonly { threads: number; innerStepsPerSecond: number }[]): {
  workers: number;
  threads: number;
  innerStepsPerSecond: number;
} {
  return {
    workers: workers.length,
    threads: workers.reduce((sum, w) => sum + w.threads, 0),
    innerStepsPerSecond: workers.reduce((sum, w) => sum + w.innerStepsPerSecond, 0),
  };
}
