// From raw grid runs to reported numbers: selection on inner-valid, divergence, speedups.
import { describe, expect, it } from 'vitest';
import type { BenchRunOutput } from '../src/evaluate/benchRun.js';
import { concatGrids, lowerEnvelope, speedupOver, summarizeRun } from '../src/evaluate/summarize.js';

/** A run of G grid points × 1 seed over T steps; curves[g][t] is member g's loss at step t. */
function output(curves: number[][], innerValid: number[]): BenchRunOutput {
  const G = curves.length;
  const T = curves[0]!.length;
  const losses = new Float32Array(T * G);
  for (let t = 0; t < T; t++) for (let g = 0; g < G; g++) losses[t * G + g] = curves[g]![t]!;
  return { losses, innerValid: Float32Array.from(innerValid), testLoss: Float32Array.from(innerValid), testAccuracy: null, seconds: 1 };
}

const T = 40;
const decay = (rate: number) => Array.from({ length: T }, (_, t) => Math.exp(-rate * t));

describe('bench summaries', () => {
  it('records divergence at the step it happened and never selects a diverged grid point', () => {
    const blowUp = decay(0.2).map((x, t) => (t >= 13 ? Number.NaN : x));
    const spec = { kind: 'baseline' as const, name: 'sgd', optimizer: 'sgd', lrs: [0.01, 0.1, 1] };
    // The diverged point has the lowest inner-valid loss on record: it must still not be chosen.
    const r = summarizeRun(spec, output([decay(0.01), decay(0.05), blowUp], [0.9, 0.2, 0.01]), 1, T, null);
    expect(r.selectedLr).toBe(0.1);
    expect(r.diverged).toBe(false);
    expect(r.grid[2]).toMatchObject({ lr: 1, divergedAt: 13, innerValidLoss: null, finalTrainLoss: null });
    expect(r.selectedAtGridEdge).toBe(false);
  });

  it('when every point diverged, the result is diverged (losses null) at the latest divergence', () => {
    const at = (k: number) => decay(0.1).map((x, t) => (t >= k ? Number.POSITIVE_INFINITY : x));
    const spec = { kind: 'baseline' as const, name: 'lars', optimizer: 'lars', lrs: [1, 10] };
    const r = summarizeRun(spec, output([at(5), at(9)], [Number.NaN, Number.NaN]), 1, T, null);
    expect(r.diverged).toBe(true);
    expect(r.divergedAt).toBe(9);
    expect(r.finalTrainLoss).toBeNull();
    expect(r.testLoss).toBeNull();
    expect(r.selectedLr).toBeNull();
  });

  it("speedup: the steps tuned Adam's lower envelope needs to reach the final loss, over the steps taken", () => {
    const adam = output([decay(0.05), decay(0.1)], [0.2, 0.1]);
    const envelope = lowerEnvelope(adam, 2, 1, T);
    // The envelope follows the faster member (smoothing window T/20 = 2).
    expect(envelope[T - 1]).toBeCloseTo((Math.exp(-0.1 * (T - 1)) + Math.exp(-0.1 * (T - 2))) / 2, 6);
    const slow = summarizeRun({ kind: 'baseline', name: 'nesterov', optimizer: 'nesterov', lrs: [0.1] }, output([decay(0.05)], [0.3]), 1, T, envelope);
    expect(slow.speedupIsLowerBound).toBe(false);
    expect(slow.speedupOverAdam!).toBeLessThan(0.6);
    expect(speedupOver(envelope, 1e-9, T)).toEqual({ value: 1, lowerBound: true });
  });

  it('a grid extension joins its points on the right side, member by member', () => {
    const a = output([decay(0.1), decay(0.2)], [1, 2]);
    const b = output([decay(0.3)], [3]);
    const joined = concatGrids(a, 2, b, 1, 1, T);
    expect(Array.from(joined.innerValid)).toEqual([1, 2, 3]);
    expect(joined.losses[5 * 3 + 2]).toBeCloseTo(Math.exp(-0.3 * 5), 6);
    expect(joined.losses[5 * 3 + 0]).toBeCloseTo(Math.exp(-0.1 * 5), 6);
  });
});
