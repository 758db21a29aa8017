// The live terminal dashboard of `lopt meta-train` (ink). The trainer pushes events into a store
// from outside React; the component re-renders from the store, reads `q` to ask for a graceful
// stop, and unmounts itself once the run has ended.

import { Box, render, useApp, useInput, useStdin, useStdout } from 'ink';
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { MetaTrainListener } from '../../meta/events.js';
import { createDashboardStore, META_LOSS_HISTORY, type DashboardStore } from './dashboardState.js';
import { Footer, LastCheckpoint, Progress, RunHeader, StepStats, Warnings, Workers } from './dashboardSections.js';
import { MetaLossChart } from './metaLossChart.js';

const CHART_HEIGHT = 8;
/** Used when stdout does not say how wide it is. */
const DEFAULT_COLUMNS = 80;

export interface MetaTrainDashboardProps {
  store: DashboardStore;
  /** Asks the trainer to stop after the current outer step (it then writes a checkpoint). Called once. */
  onStop: () => void;
  /**
   * A second Ctrl+C after a stop was asked: quit now. Ctrl+C does not raise SIGINT while ink holds the
   * terminal in raw mode, so the dashboard has to pass it on itself.
   */
  onAbort?: () => void;
}

/** The terminal width, following resizes. */
function useColumns(): number {
  const { stdout } = useStdout();
  const [columns, setColumns] = useState(stdout.columns || DEFAULT_COLUMNS);
  useEffect(() => {
    const onResize = () => setColumns(stdout.columns || DEFAULT_COLUMNS);
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return columns;
}

export function MetaTrainDashboard({ store, onStop, onAbort }: MetaTrainDashboardProps) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  const [stopRequested, setStopRequested] = useState(false);
  // The guard against asking twice is a ref, not the state: a key read before React has re-rendered
  // (and handed useInput the new handler) would still see the old state.
  const stopAsked = useRef(false);
  const columns = useColumns();
  const { exit } = useApp();
  // Raw keyboard input needs a terminal on stdin; with a pipe, useInput would throw. Compared with
  // true because ink passes stdin.isTTY through, which is undefined (not false) on a pipe, and
  // useInput only stays off for isActive === false.
  const { isRawModeSupported } = useStdin();
  const keysEnabled = isRawModeSupported === true && state.end === null;

  useInput(
    (input, key) => {
      const ctrlC = key.ctrl && input === 'c';
      if (input === 'q' || input === 'Q' || ctrlC) {
        if (!stopAsked.current) {
          stopAsked.current = true;
          setStopRequested(true);
          onStop();
        } else if (ctrlC) {
          onAbort?.();
        }
      }
    },
    { isActive: keysEnabled },
  );

  // The run is over: ink renders this last frame on unmount and leaves it on screen.
  useEffect(() => {
    if (state.end !== null) exit();
  }, [state.end, exit]);

  return (
    <Box flexDirection="column" width={columns}>
      <RunHeader run={state.run} />
      <Box marginTop={1}>
        <Progress run={state.run} lastStep={state.lastStep} elapsedSeconds={state.elapsedSeconds} barWidth={Math.max(10, Math.min(40, columns - 50))} />
      </Box>
      <Box marginTop={1}>
        <MetaLossChart values={state.metaLossHistory} columns={columns} maxPoints={META_LOSS_HISTORY} height={CHART_HEIGHT} />
      </Box>
      <Box marginTop={1} flexDirection="column">
        <StepStats run={state.run} lastStep={state.lastStep} />
        <LastCheckpoint checkpoint={state.lastCheckpoint} />
        <Workers run={state.run} workers={state.workers} />
      </Box>
      <Warnings warnings={state.warnings} count={state.warningCount} />
      <Box marginTop={1}>
        <Footer end={state.end} stopRequested={stopRequested} keysEnabled={keysEnabled} />
      </Box>
    </Box>
  );
}

export interface StartDashboardOptions {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
  /** Called once when the user presses q (or Ctrl+C): the trainer should stop gracefully. */
  onStop: () => void;
  /**
   * Called on a second Ctrl+C, after the dashboard has unmounted and given the terminal back.
   * Defaults to exiting the process with status 130, what an interrupted command reports.
   */
  onAbort?: () => void;
  /**
   * Route console.* output above the dashboard instead of through it (ink's patchConsole); on by
   * default. Turn it off where `console` is not Node's own (test runners).
   */
  patchConsole?: boolean;
}

export interface DashboardHandle {
  /** Give every trainer event to this. */
  listener: MetaTrainListener;
  /** Resolves once the dashboard has unmounted (after run-end, or after close()). */
  waitUntilExit(): Promise<void>;
  /** Unmounts now if still mounted (e.g. the trainer threw before run-end) and waits for it. */
  close(): Promise<void>;
}

/** Renders the dashboard on `stdout` and returns the listener that feeds it. */
export function startDashboard(options: StartDashboardOptions): DashboardHandle {
  const store = createDashboardStore();
  const abort = options.onAbort ?? (() => process.exit(130));
  const instance = render(
    <MetaTrainDashboard
      store={store}
      onStop={options.onStop}
      onAbort={() => {
        // Unmount first: it takes the terminal out of raw mode, which a bare exit would leave on.
        instance.unmount();
        abort();
      }}
    />,
    {
      stdout: options.stdout,
      stdin: options.stdin,
      ...(options.stderr ? { stderr: options.stderr } : {}),
      // The dashboard reads Ctrl+C itself: the first press asks for a graceful stop.
      exitOnCtrlC: false,
      patchConsole: options.patchConsole ?? true,
    },
  );
  const exited = instance.waitUntilExit().then(() => undefined);
  // Errors still reach whoever awaits; this only keeps an unawaited failure from crashing the process.
  exited.catch(() => undefined);
  return {
    listener: (event) => store.dispatch(event),
    waitUntilExit: () => exited,
    async close() {
      instance.unmount();
      await exited;
    },
  };
}
