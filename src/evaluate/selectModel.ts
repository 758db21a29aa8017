// Model selection for a meta-training run: every candidate theta (e.g. the snapshots a continued
// run keeps every 500 outer steps) gets one trial on a meta-validation suite — tasks that are not
// the generalization suite's, which stays the yardstick of what ships — beside tuned Adam, and
// the candidate with the lowest geometric mean of final training loss / tuned Adam's is selected.
import type { BenchResults } from './results.js';
import { runBench, type BenchOptions } from './runBench.js';

export interface CandidateScore {
  candidate: string;
  /** Per suite task: final training loss / tuned Adam's (Infinity when the candidate diverged). */
  ratios: number[];
  /** exp(mean(log ratio)); Infinity when any task diverged. */
  score: number;
}

export interface Selection {
  scores: CandidateScore[];
  /** The lowest score; among equal scores the later candidate (longer trained). */
  selected: string;
  results: BenchResults;
}

/** Scores of `candidates` (checkpoint paths) from bench results that hold them and Adam. */
export function scoreCandidates(results: BenchResults, candidates: string[]): CandidateScore[] {
  return candidates.map((candidate) => {
    const ratios = results.tasks.map((t) => {
      const adam = t.results.find((r) => r.optimizer === 'adam');
      const mine = t.results.find((r) => r.optimizer === `lopt:${candidate}`);
      if (adam === undefined || mine === undefined) throw new Error(`select: the results of ${t.task} lack adam or lopt:${candidate}`);
      if (mine.finalTrainLoss === null) return Infinity;
      // Adam diverging at every learning rate makes any finite loss a win.
      if (adam.finalTrainLoss === null) return 0;
      return mine.finalTrainLoss / adam.finalTrainLoss;
    });
    const score = ratios.some((r) => !Number.isFinite(r)) ? Infinity : Math.exp(ratios.reduce((s, r) => s + Math.log(Math.max(r, 1e-12)), 0) / ratios.length);
    return { candidate, ratios, score };
  });
}

export async function selectModel(o: Omit<BenchOptions, 'optimizers'> & { candidates: string[] }): Promise<Selection> {
  if (o.candidates.length === 0) throw new Error('select: no candidate checkpoints');
  const results = await runBench({ ...o, optimizers: ['adam', ...o.candidates.map((c) => `lopt:${c}`)] });
  const scores = scoreCandidates(results, o.candidates);
  return { scores, selected: pickLowest(scores), results };
}

/** The candidate with the lowest score; among equal ones the later (longer trained). */
export function pickLowest(scores: CandidateScore[]): string {
  let best = scores[0]!;
  for (const s of scores) if (s.score <= best.score) best = s;
  return best.candidate;
}
