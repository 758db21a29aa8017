// The goals a shipped μLO is held to on the generalization suite (issue 13), checked against its
// bench rows: beat every tuned baseline on most tasks of its own parametrization, keep final loss /
// best tuned loss at or below a ceiling per axis (geometric mean) and at the ×25 horizon, never
// diverge, and (μP's claim) stay below its SP twin at the widest widths. A card prints each goal
// with what was measured.
import { axisSummaries, type EvaluationRow, type TwinRow } from './cardEvaluation.js';
import { formatLoss } from './report/format.js';

export interface CardGoal {
  goal: string;
  measured: string;
  met: boolean;
}

export type Parametrization = 'mup' | 'sp';

/** Share of its own parametrization's tasks on which it must end lower than every tuned baseline. */
export const WIN_SHARE_GOALS: Record<Parametrization, number> = { mup: 0.6, sp: 0.5 };

/** Ceilings of the geometric mean of final loss / best tuned, per axis, over the μP optimizer's own tasks. */
export const AXIS_RATIO_GOALS: Record<string, number> = { width: 1.0, depth: 1.0, batch: 1.0, dataset: 1.0 };

/** The longest run of the horizon axis has a ceiling of its own: final loss / best tuned at ×25. */
export const HORIZON_GOAL = { factor: 25, ceiling: 1.2 };

/** Width multiples at which the μP optimizer on μP must stay below its SP twin on SP. */
export const TWIN_WIDTH_FACTORS = [16, 32];

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const label = (p: Parametrization) => (p === 'mup' ? 'μP' : 'SP');

/**
 * `rows`: the optimizer's evaluation rows over every task it ran on; `own`: the parametrization it
 * was meta-trained for; `twin`: the width comparison against its SP twin (the μP optimizer's card only).
 */
export function cardGoals(rows: EvaluationRow[], own: Parametrization, twin: TwinRow[] | null): CardGoal[] {
  const mine = rows.filter((r) => r.task.parametrization === own);
  const wins = mine.filter((r) => r.wins).length;
  const share = WIN_SHARE_GOALS[own];
  const goals: CardGoal[] = [
    {
      goal: `lower final training loss than every tuned baseline on ≥ ${pct(share)} of the suite's ${label(own)} tasks`,
      measured: `${wins} of ${mine.length} (${pct(wins / Math.max(mine.length, 1))})`,
      met: mine.length > 0 && wins / mine.length >= share,
    },
  ];
  if (own === 'mup') {
    for (const a of axisSummaries(mine)) {
      const ceiling = AXIS_RATIO_GOALS[a.axis];
      if (ceiling === undefined) continue;
      goals.push({
        goal: `${a.axis} axis: geometric mean of final loss / best tuned ≤ ${ceiling.toFixed(2)}×`,
        measured:
          a.geoMeanRatio === null
            ? 'no finished task'
            : `${a.geoMeanRatio.toFixed(3)}× over ${a.tasks - a.diverged} task${a.tasks - a.diverged === 1 ? '' : 's'}`,
        met: a.geoMeanRatio !== null && a.diverged === 0 && a.geoMeanRatio <= ceiling,
      });
    }
    const longest = mine.find((r) => r.task.axis === 'horizon' && r.task.factor === HORIZON_GOAL.factor);
    if (longest !== undefined) {
      goals.push({
        goal: `×${HORIZON_GOAL.factor} horizon: final loss / best tuned ≤ ${HORIZON_GOAL.ceiling.toFixed(2)}×`,
        measured: longest.ratio !== null ? `${longest.ratio.toFixed(3)}×` : longest.mine.diverged ? 'diverged' : 'every tuned baseline diverged',
        met: longest.ratio !== null && longest.ratio <= HORIZON_GOAL.ceiling,
      });
    }
  }
  const diverged = rows.filter((r) => r.mine.diverged);
  goals.push({
    goal: 'no divergence on any task',
    measured: diverged.length === 0 ? `none of ${rows.length}` : `${diverged.length} of ${rows.length} (${diverged.map((r) => r.task.task).join(', ')})`,
    met: diverged.length === 0,
  });
  for (const factor of TWIN_WIDTH_FACTORS) {
    const r = twin?.find((t) => t.factor === factor);
    if (r === undefined) continue;
    goals.push({
      goal: `×${factor} width: μP on μP lower than its SP twin on SP`,
      measured: `${formatLoss(r.mupOnMup)} vs ${formatLoss(r.spOnSp)}`,
      met: r.wins,
    });
  }
  return goals;
}
