// The live terminal view of `lopt bench` (ink): overall progress, the runs in progress with their
// running time, and the last finished runs. It reads no keys; Ctrl+C stays the shell's SIGINT.

import { Box, Text } from 'ink';
import { useEffect, useState, useSyncExternalStore } from 'react';
import { formatDuration, formatEta, formatPercent, progressBar } from '../metaTrain/format.js';
import { elapsedSeconds, type BenchProgressStore } from './progressState.js';

const BAR_WIDTH = 30;
/** How often the running times are redrawn. */
export const REDRAW_MS = 1000;

export interface BenchProgressViewProps {
  store: BenchProgressStore;
  /** Clock in milliseconds; must be the store's clock. Defaults to Date.now. */
  now?: () => number;
}

export function BenchProgressView({ store, now = Date.now }: BenchProgressViewProps) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  // Redrawn every second so that the elapsed times move between events; cleared on unmount.
  const [time, setTime] = useState(now);
  useEffect(() => {
    const timer = setInterval(() => setTime(now()), REDRAW_MS);
    return () => clearInterval(timer);
  }, [now]);
  // An event may be newer than the last tick.
  const at = Math.max(time, now());

  if (state.startedAt === null) return <Text bold>lopt bench · planning the runs…</Text>;
  const computed = state.runs - state.cachedAtStart;
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>lopt bench</Text>
        {` · ${state.runs} run${state.runs === 1 ? '' : 's'}${state.cachedAtStart > 0 ? ` (${state.cachedAtStart} already done in this folder, ${computed} to run)` : ''}`}
      </Text>
      <Text>
        <Text bold>{`${state.done}/${state.runs} `}</Text>
        <Text color="green">{progressBar(state.done, state.runs, BAR_WIDTH)}</Text>
        {` ${formatPercent(state.done, state.runs)}  elapsed ${formatDuration(elapsedSeconds(state, at))}  eta ${formatEta(state.etaSeconds)}`}
      </Text>
      {state.running.length > 0 && (
        <Box flexDirection="column" marginTop={1}>
          {state.running.map((r) => (
            <Text key={r.index}>
              <Text color="yellow">{'  running '}</Text>
              {`${r.optimizer} on ${r.task}  `}
              <Text dimColor>{formatDuration((at - r.startedAt) / 1000)}</Text>
            </Text>
          ))}
        </Box>
      )}
      {state.finished.length > 0 && (
        <Box flexDirection="column" marginTop={1}>
          {state.finished.map((r) => (
            <Text key={r.index}>
              <Text color="green">{'  done    '}</Text>
              {`${r.optimizer} on ${r.task}  `}
              <Text dimColor>{`${r.cached ? 'cached' : `${r.seconds.toFixed(1)} s`}  ${r.summary}`}</Text>
            </Text>
          ))}
        </Box>
      )}
    </Box>
  );
}
