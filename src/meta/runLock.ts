// One meta-training process per run folder (and per continuation file): a second one would
// interleave its checkpoints and metrics with the first's. The lock is proper-lockfile's (an
// atomic mkdir, its mtime refreshed while the holder lives, so the lock of a process that died is
// taken over once it is stale); `<target>.lock.json` beside it says who holds it.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import lockfile from 'proper-lockfile';
import { printable } from '../checkpoint/error.js';

/** A lock not refreshed for this long belongs to a dead process and is taken over. */
export const STALE_MS = 30_000;

export interface RunLock {
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  since: string;
  command: string;
}

/**
 * Locks `target` (a run folder, or a continuation file) for this process, or throws an error that
 * names the holder. `what` names the target in messages.
 */
export async function acquireLock(target: string, what: string, onCompromised?: (e: Error) => void): Promise<RunLock> {
  const lockDir = `${target}.lock`;
  const holderFile = `${lockDir}.json`;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, {
      lockfilePath: lockDir,
      realpath: false,
      stale: STALE_MS,
      update: STALE_MS / 3,
      retries: 0,
      // The default would throw from a timer; the caller decides (meta-training warns).
      onCompromised: (e) => onCompromised?.(e),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw new Error(`meta-train: cannot lock ${what} ${target} (${(e as Error).message})`);
    throw new Error(
      `meta-train: ${what} ${target} is in use by ${await describeHolder(holderFile)}; stop that process first (a lock left by a process that died is taken over after ${STALE_MS / 1000} s)`,
    );
  }
  const holder: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command: 'lopt meta-train' };
  await writeFile(holderFile, `${JSON.stringify(holder)}\n`).catch(() => undefined);
  return {
    release: async () => {
      await rm(holderFile, { force: true });
      await release();
    },
  };
}

async function describeHolder(holderFile: string): Promise<string> {
  try {
    const h = JSON.parse(await readFile(holderFile, 'utf8')) as Partial<Holder>;
    const field = (v: unknown) => printable(String(v), 80);
    return `${field(h.command)} (pid ${field(h.pid)} on ${field(h.host)}, since ${field(h.since)})`;
  } catch {
    return 'another process (it has not said which yet)';
  }
}
