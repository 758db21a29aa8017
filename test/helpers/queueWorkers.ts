// `lopt worker` processes for tests and benches: spawned from the compiled CLI, their log kept.
import { spawn, type ChildProcess } from 'node:child_process';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// This file is <root>/test/helpers/ (vitest) or <root>/dist/test/helpers/ (the bench): the CLI is <root>/dist/src/cli/lopt.js.
const CLI = ((): string => {
  const up = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const root = basename(up) === 'dist' ? dirname(up) : up;
  return join(root, 'dist', 'src', 'cli', 'lopt.js');
})();

export interface WorkerProcess {
  proc: ChildProcess;
  log(): string;
  /** Resolves once the log matches (rejects after `ms`). */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  /** The exit code (or signal name) once it exited. */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** The compiled CLI, whether this file runs as test/helpers/*.ts or dist/test/helpers/*.js. */
export function cliPath(): string {
  return CLI;
}

export function spawnLopt(args: string[], env: NodeJS.ProcessEnv = {}): WorkerProcess {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, CI: 'true', LOPT_THREADS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const waiters: Array<() => void> = [];
  const onData = (b: Buffer) => {
    text += b.toString('utf8');
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const waitFor = (pattern: RegExp, ms = 60_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in:\n${text}`)), ms);
      const check = () => {
        if (pattern.test(text)) {
          clearTimeout(timer);
          resolve();
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          clearTimeout(timer);
          reject(new Error(`exited before ${pattern}:\n${text}`));
        } else waiters.push(check);
      };
      check();
    });
  return {
    proc,
    log: () => text,
    waitFor,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export function spawnWorker(url: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): WorkerProcess {
  return spawnLopt(['worker', '--queue', url, '--backend', 'wasm', ...extra], env);
}
