// Picks how `lopt meta-train` reports: the live dashboard when a person is watching a terminal,
// the plain line log otherwise (CI, a pipe, a file), where redrawn frames would be noise.

import type { MetaTrainListener } from '../../meta/events.js';
import { startDashboard } from './dashboard.js';
import { plainReporter } from './plainReporter.js';

export interface ChooseReporterOptions {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
  /** Plain log only: print every `every`-th outer step. */
  every: number;
  /** Dashboard only: the user pressed q (or Ctrl+C); the trainer should stop after this step. */
  onStop: () => void;
  /** Dashboard only: a second Ctrl+C; defaults to exiting with status 130 once the terminal is restored. */
  onAbort?: () => void;
}

export interface Reporter {
  kind: 'dashboard' | 'plain';
  /** Give every trainer event to this. */
  listener: MetaTrainListener;
  /** Call when the run is over (or has thrown): waits until the dashboard has drawn its last frame. */
  close(): Promise<void>;
}

/** Whether CI is set: any non-empty value except the explicit negatives some setups export. */
function isCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/** Whether a person is watching a terminal: stdout is a TTY, CI is not set, TERM is not 'dumb'. */
export function isInteractiveTerminal(stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stdout.isTTY === true && !isCi(env) && env.TERM !== 'dumb';
}

/** The dashboard on an interactive terminal (see isInteractiveTerminal); else the plain log on stdout. */
export function chooseReporter(options: ChooseReporterOptions): Reporter {
  const { stdout, stdin, env } = options;
  if (isInteractiveTerminal(stdout, env)) {
    const dashboard = startDashboard({
      stdout,
      stdin,
      onStop: options.onStop,
      ...(options.onAbort ? { onAbort: options.onAbort } : {}),
    });
    return { kind: 'dashboard', listener: dashboard.listener, close: () => dashboard.close() };
  }
  const listener = plainReporter({ write: (line) => stdout.write(`${line}\n`), every: options.every });
  return { kind: 'plain', listener, close: async () => undefined };
}
