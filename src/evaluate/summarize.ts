// Raw bench runs → the numbers the report shows: smoothed curves, selection on inner-valid,
// final/best losses, divergence, and the speedup over tuned Adam's lower envelope.
import type { BenchOptimizerSpec, BenchRunOutput } from './benchRun.js';
import type { CurvePoint, GridPoint, OptimizerResult } from './results.js';

const MAX_CURVE_POINTS = 200;

/** Trailing mean over `window` steps (per-batch training losses are noisy). */
export function smooth(xs: readonly number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let t = 0; t < xs.length; t++) {
    sum += xs[t]!;
    if (t >= window) sum -= xs[t - window]!;
    out.push(sum / Math.min(t + 1, window));
  }
  return out;
}

export function smoothingWindow(steps: number): number {
  return Math.max(1, Math.round(steps / 20));
}

/** One member's losses over the run. */
function memberLosses(out: BenchRunOutput, member: number, P: number, T: number): number[] {
  return Array.from({ length: T }, (_, t) => out.losses[t * P + member]!);
}

function firstNonFinite(xs: readonly number[]): number | null {
  const i = xs.findIndex((x) => !Number.isFinite(x));
  return i < 0 ? null : i;
}

interface GridCurves {
  /** Per grid point: mean over seeds of the smoothed curve (null entries where any seed diverged). */
  curves: (number | null)[][];
  divergedAt: (number | null)[];
}

function gridCurves(out: BenchRunOutput, G: number, S: number, T: number): GridCurves {
  const P = G * S;
  const w = smoothingWindow(T);
  const curves: (number | null)[][] = [];
  const divergedAt: (number | null)[] = [];
  for (let g = 0; g < G; g++) {
    const perSeed = Array.from({ length: S }, (_, s) => memberLosses(out, g * S + s, P, T));
    const diverged = perSeed.map(firstNonFinite).filter((x): x is number => x !== null);
    divergedAt.push(diverged.length > 0 ? Math.min(...diverged) : null);
    const smoothed = perSeed.map((xs) => smooth(xs, w));
    curves.push(
      Array.from({ length: T }, (_, t) => {
        const v = smoothed.reduce((a, xs) => a + xs[t]!, 0) / S;
        return Number.isFinite(v) ? v : null;
      }),
    );
  }
  return { curves, divergedAt };
}

function meanOverSeeds(values: Float32Array | null, g: number, S: number): number | null {
  if (values === null) return null;
  let s = 0;
  for (let i = 0; i < S; i++) s += values[g * S + i]!;
  const v = s / S;
  return Number.isFinite(v) ? v : null;
}

function downsample(curve: (number | null)[]): CurvePoint[] {
  const T = curve.length;
  const stride = Math.max(1, Math.ceil(T / MAX_CURVE_POINTS));
  const out: CurvePoint[] = [];
  for (let t = 0; t < T; t += stride) out.push({ step: t + 1, loss: curve[t] ?? null });
  if ((T - 1) % stride !== 0) out.push({ step: T, loss: curve[T - 1] ?? null });
  return out;
}

/** Tuned Adam's lower envelope: at each step the lowest smoothed loss over its learning rates. */
export function lowerEnvelope(out: BenchRunOutput, G: number, S: number, T: number): (number | null)[] {
  const { curves } = gridCurves(out, G, S, T);
  return Array.from({ length: T }, (_, t) => {
    const vs = curves.map((c) => c[t]).filter((v): v is number => v !== null);
    return vs.length > 0 ? Math.min(...vs) : null;
  });
}

export function envelopePoints(envelope: (number | null)[]): CurvePoint[] {
  return downsample(envelope);
}

/** Steps tuned Adam needs to reach `loss`, over `steps` (≥ 1 as a lower bound when it never does). */
export function speedupOver(envelope: (number | null)[], loss: number, steps: number): { value: number; lowerBound: boolean } {
  const t = envelope.findIndex((v) => v !== null && v <= loss);
  if (t < 0) return { value: 1, lowerBound: true };
  return { value: (t + 1) / steps, lowerBound: false };
}

export function summarizeRun(
  spec: BenchOptimizerSpec,
  out: BenchRunOutput,
  seeds: number,
  steps: number,
  adamEnvelope: (number | null)[] | null,
): OptimizerResult {
  const G = spec.kind === 'baseline' ? spec.lrs.length : 1;
  const S = seeds;
  const T = steps;
  const { curves, divergedAt } = gridCurves(out, G, S, T);
  const grid: GridPoint[] =
    spec.kind === 'baseline'
      ? spec.lrs.map((lr, g) => ({
          lr,
          innerValidLoss: divergedAt[g] === null ? meanOverSeeds(out.innerValid, g, S) : null,
          finalTrainLoss: divergedAt[g] === null ? (curves[g]![T - 1] ?? null) : null,
          divergedAt: divergedAt[g]!,
        }))
      : [];
  // Selection on inner-valid; a diverged point is never selected unless all diverged.
  let selected = spec.kind === 'baseline' ? selectedIndex(out, G, S, T) : 0;
  // Every point diverged: report the one that lasted longest.
  if (selected < 0) selected = grid.reduce((b, p, g) => ((p.divergedAt ?? -1) > (grid[b]!.divergedAt ?? -1) ? g : b), 0);
  const diverged = divergedAt[selected] !== null;
  const curve = curves[selected]!;
  const finalTrainLoss = diverged ? null : (curve[T - 1] ?? null);
  const finite = curve.filter((v): v is number => v !== null);
  const bestTrainLoss = diverged || finite.length === 0 ? null : Math.min(...finite);
  let speedupOverAdam: number | null = null;
  let speedupIsLowerBound = false;
  if (spec.kind === 'baseline' && spec.name === 'adam') speedupOverAdam = 1;
  else if (finalTrainLoss !== null && adamEnvelope !== null) {
    const s = speedupOver(adamEnvelope, finalTrainLoss, T);
    speedupOverAdam = s.value;
    speedupIsLowerBound = s.lowerBound;
  }
  const metrics =
    diverged || out.testMetrics === undefined ? undefined : Object.entries(out.testMetrics).map(([k, v]) => [k, meanOverSeeds(v, selected, S)] as const);
  const testMetrics = metrics && metrics.every(([, v]) => v !== null) ? (Object.fromEntries(metrics) as Record<string, number>) : undefined;
  return {
    optimizer: spec.kind === 'baseline' ? spec.name : `lopt:${spec.name}`,
    kind: spec.kind,
    tuned: spec.kind === 'baseline' && spec.lrs.length > 1,
    grid,
    selectedLr: spec.kind === 'baseline' && !(diverged && grid.every((p) => p.divergedAt !== null)) ? spec.lrs[selected]! : null,
    selectedAtGridEdge: spec.kind === 'baseline' && spec.lrs.length > 1 && !diverged && (selected === 0 || selected === G - 1),
    diverged,
    divergedAt: divergedAt[selected]!,
    finalTrainLoss,
    bestTrainLoss,
    testLoss: diverged ? null : meanOverSeeds(out.testLoss, selected, S),
    testAccuracy: diverged ? null : meanOverSeeds(out.testAccuracy, selected, S),
    ...(testMetrics ? { testMetrics } : {}),
    speedupOverAdam,
    speedupIsLowerBound,
    curve: downsample(curve),
    seconds: out.seconds,
  };
}

/**
 * The grid index selection picks (lowest mean inner-valid loss among grid points where no seed
 * diverged), or -1 when every point diverged.
 */
export function selectedIndex(out: BenchRunOutput, G: number, S: number, T: number): number {
  const { divergedAt } = gridCurves(out, G, S, T);
  let best = Number.POSITIVE_INFINITY;
  let selected = -1;
  for (let g = 0; g < G; g++) {
    const v = divergedAt[g] === null ? meanOverSeeds(out.innerValid, g, S) : null;
    if (v !== null && v < best) {
      best = v;
      selected = g;
    }
  }
  return selected;
}

/** Two grids' outputs as one, members in the order of `before`'s grid points then `after`'s. */
export function concatGrids(before: BenchRunOutput, Gb: number, after: BenchRunOutput, Ga: number, S: number, T: number): BenchRunOutput {
  const Pb = Gb * S;
  const Pa = Ga * S;
  const P = Pb + Pa;
  const losses = new Float32Array(T * P);
  for (let t = 0; t < T; t++) {
    losses.set(before.losses.subarray(t * Pb, (t + 1) * Pb), t * P);
    losses.set(after.losses.subarray(t * Pa, (t + 1) * Pa), t * P + Pb);
  }
  const cat = (a: Float32Array | null, b: Float32Array | null) => {
    if (a === null || b === null) return null;
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };
  const metrics = before.testMetrics && after.testMetrics ? before.testMetrics : undefined;
  const testMetrics = metrics && Object.fromEntries(Object.keys(metrics).map((k) => [k, cat(before.testMetrics![k] ?? null, after.testMetrics![k] ?? null)]));
  return {
    losses,
    innerValid: cat(before.innerValid, after.innerValid)!,
    testLoss: cat(before.testLoss, after.testLoss)!,
    testAccuracy: cat(before.testAccuracy, after.testAccuracy),
    ...(testMetrics && Object.values(testMetrics).every((v) => v !== null) ? { testMetrics: testMetrics as Record<string, Float32Array> } : {}),
    seconds: before.seconds + after.seconds,
  };
}
