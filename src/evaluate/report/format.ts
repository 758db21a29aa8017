// Number and text formatting shared by the markdown and HTML summaries, so both show the same cells.
import type { OptimizerResult } from '../results.js';

/** Shown where a value does not apply (no accuracy on a regression task, no lr for a learned optimizer). */
export const NOT_APPLICABLE = '—';

/** Losses with 4 significant digits: enough to separate optimizers without pretending to more precision. */
export function formatLoss(loss: number | null): string {
  if (loss === null || !Number.isFinite(loss)) return NOT_APPLICABLE;
  return loss.toPrecision(4);
}

/**
 * Learning rates in exponent form with at most 2 significant digits (`3e-3`, `3.2e-4`): the grid is
 * half a decade apart (1, 3.16, 10, …), so 2 digits tell its points apart and more would be noise.
 */
export function formatLr(lr: number | null): string {
  if (lr === null || !Number.isFinite(lr)) return NOT_APPLICABLE;
  return Number(lr.toPrecision(2)).toExponential();
}

/** Accuracy in [0, 1] as a percentage with 2 decimals. */
export function formatAccuracy(accuracy: number | null): string {
  if (accuracy === null || !Number.isFinite(accuracy)) return NOT_APPLICABLE;
  return `${(accuracy * 100).toFixed(2)}%`;
}

/** `diverged @ step N`, or plain `diverged` when the step is unknown. */
export function divergedText(r: Pick<OptimizerResult, 'divergedAt'>): string {
  return r.divergedAt === null ? 'diverged' : `diverged @ step ${r.divergedAt}`;
}

/**
 * Speedup over tuned Adam with 2 decimals. A lower bound (Adam never reached this loss) reads
 * `≥ 1.00`, so it is not mistaken for a measured tie.
 */
export function formatSpeedup(r: Pick<OptimizerResult, 'speedupOverAdam' | 'speedupIsLowerBound' | 'diverged' | 'divergedAt'>): string {
  if (r.diverged) return divergedText(r);
  if (r.speedupOverAdam === null || !Number.isFinite(r.speedupOverAdam)) return NOT_APPLICABLE;
  const value = r.speedupOverAdam.toFixed(2);
  return r.speedupIsLowerBound ? `≥ ${value}` : value;
}

/** The final-loss cell: a diverged run says where it diverged instead of an empty cell. */
export function formatFinalLoss(r: Pick<OptimizerResult, 'finalTrainLoss' | 'diverged' | 'divergedAt'>): string {
  if (r.diverged) return divergedText(r);
  return formatLoss(r.finalTrainLoss);
}
