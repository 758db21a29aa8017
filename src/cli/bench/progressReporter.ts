// Picks how `lopt bench` reports progress: the live view when a person is watching a terminal (the
// same rule as meta-train's dashboard), one plain line per event otherwise (CI, a pipe, a file).

import { render } from 'ink';
import { createElement } from 'react';
import type { BenchEvent } from '../../evaluate/runBench.js';
import { isInteractiveTerminal } from '../metaTrain/reporter.js';
import { createBenchProgressStore } from './progressState.js';
import { BenchProgressView } from './progressView.js';

/** The plain log line for one event, or null for an event that has none. */
export function progressLine(e: BenchEvent): string | null {
  if (e.type === 'bench-start') return `bench: ${e.runs} runs${e.done > 0 ? ` (${e.done} already done in this folder, kept)` : ''}`;
  if (e.type === 'run-start') return `  start  ${e.optimizer} on ${e.task}`;
  return `  [${e.done}/${e.runs}] ${e.optimizer} on ${e.task}: ${e.seconds.toFixed(1)} s, ${e.summary}`;
}

export interface BenchProgressOptions {
  stdout: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  /** Plain mode only: prints one line (given without its newline). */
  write: (line: string) => void;
  /** Live view only: route console.* above the view (ink's patchConsole); on by default, off in test runners. */
  patchConsole?: boolean;
  /** Live view only: clock in milliseconds, Date.now by default. */
  now?: () => number;
}

export interface BenchProgress {
  kind: 'live' | 'plain';
  /** Give every runBench event to this (runBench's onEvent). */
  listener: (e: BenchEvent) => void;
  /** Call when the bench is over (or has thrown): the live view draws its last frame and lets go of the terminal. */
  close(): Promise<void>;
}

export function benchProgress(options: BenchProgressOptions): BenchProgress {
  const { stdout, env, write } = options;
  if (!isInteractiveTerminal(stdout, env)) {
    return {
      kind: 'plain',
      listener: (e) => {
        const line = progressLine(e);
        if (line !== null) write(line);
      },
      close: async () => undefined,
    };
  }
  const now = options.now ?? Date.now;
  const store = createBenchProgressStore(now);
  const instance = render(createElement(BenchProgressView, { store, now }), { stdout, patchConsole: options.patchConsole ?? true });
  const exited = instance.waitUntilExit().then(() => undefined);
  // Errors still reach whoever awaits close(); this only keeps an unawaited failure from crashing.
  exited.catch(() => undefined);
  return {
    kind: 'live',
    listener: (e) => store.dispatch(e),
    async close() {
      // Let React commit what the last events changed (it does so in a microtask): unmount draws
      // the frame it has, and the last run-done usually comes just before close().
      await new Promise((resolve) => setImmediate(resolve));
      instance.unmount();
      await exited;
    },
  };
}
