// The meta-loss curve as a terminal line chart (asciichart), the dashboard's main signal: whether
// the learned optimizer is improving shows in the trend, not in the latest number.

import * as asciichart from 'asciichart';
import { Box, Text } from 'ink';
import { formatLoss } from './format.js';

/** Width of the y-axis labels; formatLoss gives at most 10 characters ('-1.234e-10'). */
const LABEL_WIDTH = 10;
/** Columns taken by the axis besides the label: a space and the axis line. */
const AXIS_WIDTH = 2;

/** How many points fit in `columns` terminal columns next to the axis labels. */
export function chartPointsFor(columns: number, maxPoints: number): number {
  return Math.max(2, Math.min(maxPoints, columns - LABEL_WIDTH - AXIS_WIDTH));
}

/**
 * The chart text for the last `maxPoints` finite values, or null when nothing can be drawn.
 * Non-finite values (a diverged step) are left out: asciichart's range would become NaN and the
 * whole chart unreadable.
 */
export function renderMetaLossChart(values: readonly number[], maxPoints: number, height: number): string | null {
  const shown = values.slice(-maxPoints).filter(Number.isFinite);
  if (shown.length === 0) return null;
  const chart = asciichart.plot(shown, {
    height,
    offset: AXIS_WIDTH + 1,
    // Equal-width labels keep the axis straight whatever the magnitudes.
    format: (x) => formatLoss(x).padStart(LABEL_WIDTH),
  });
  // Then drop the padding every label shares (usually 4 columns), keeping the axis aligned.
  const lines = chart.split('\n');
  const sharedIndent = Math.min(...lines.map((line) => line.length - line.trimStart().length));
  return lines.map((line) => line.slice(sharedIndent)).join('\n');
}

export interface MetaLossChartProps {
  values: readonly number[];
  /** Terminal columns available to the chart, labels included. */
  columns: number;
  maxPoints: number;
  height: number;
}

export function MetaLossChart({ values, columns, maxPoints, height }: MetaLossChartProps) {
  const points = chartPointsFor(columns, maxPoints);
  const chart = renderMetaLossChart(values, points, height);
  const window = Math.min(values.length, points);
  const skipped = values.slice(-points).filter((v) => !Number.isFinite(v)).length;
  const latest = values[values.length - 1];
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>meta-loss</Text>
        <Text dimColor>{` (last ${window} step${window === 1 ? '' : 's'})`}</Text>
        {latest !== undefined && <Text>{`  now ${formatLoss(latest)}`}</Text>}
        {skipped > 0 && <Text color="yellow">{`  ${skipped} non-finite not drawn`}</Text>}
      </Text>
      {chart === null ? (
        <Text dimColor>waiting for the first outer step…</Text>
      ) : (
        // truncate, never wrap: a wrapped chart line is worse than a cut one.
        <Text color="cyan" wrap="truncate-end">
          {chart}
        </Text>
      )}
    </Box>
  );
}
