// One process per run folder and per continuation file: a second is refused naming the holder; the
// lock of a process that died is taken over once stale. And the run folder's other edges: temp
// files of killed writes, folders that cannot be made, a resume before the first checkpoint.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { parseRecipe } from '../src/meta/recipe.js';
import { acquireLock, STALE_MS } from '../src/meta/runLock.js';
import { metaTrain } from '../src/meta/trainer.js';
import { prepareRunDir } from '../src/meta/runDir.js';
import { metaTrainCommand } from '../src/cli/metaTrainCommand.js';
import { runTruncationUnit } from '../src/meta/truncationUnit.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('run locks', () => {
  it('refuse a second holder, naming the first', async () => {
    const target = join(dir, 'run-a');
    await mkdir(target);
    const lock = await acquireLock(target, 'run folder');
    await expect(acquireLock(target, 'run folder')).rejects.toThrow(
      new RegExp(`run folder .*run-a is in use by lopt meta-train \\(pid ${process.pid} on ${hostname()}, since .*\\); stop that process first`),
    );
    await lock.release();
    const again = await acquireLock(target, 'run folder');
    await again.release();
  });

  it('take over the lock of a process that died (not refreshed for longer than the stale time)', async () => {
    const target = join(dir, 'run-b');
    await mkdir(`${target}.lock`, { recursive: true });
    await writeFile(`${target}.lock.json`, JSON.stringify({ pid: 999999, host: 'gone', since: '2026-01-01T00:00:00Z', command: 'lopt meta-train' }));
    const old = new Date(Date.now() - 2 * STALE_MS);
    await utimes(`${target}.lock`, old, old);
    const lock = await acquireLock(target, 'run folder');
    await lock.release();
  });

  it('a second meta-train on a running folder is refused before any work', async () => {
    const recipe = parseRecipe(
      {
        name: 'lock',
        learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 4 } },
        estimators: [
          {
            type: 'truncated-pes',
            family: { type: 'fixed', task: 'quadratic-d4-k10' },
            particles: 2,
            particlesPerUnit: 2,
            truncationLength: 2,
            episodeLength: { min: 4, max: 8 },
          },
        ],
        outerSteps: 3,
      },
      'test',
    );
    const runDir = join(dir, 'run-c');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = metaTrain({
      recipe,
      runDir,
      workers: 0,
      backend: 'wasm',
      run: async (input) => {
        await gate;
        return runTruncationUnit(input);
      },
    });
    await new Promise((r) => setTimeout(r, 200));
    await expect(metaTrain({ recipe, runDir, resume: true, workers: 0, backend: 'wasm', run: async (i) => runTruncationUnit(i) })).rejects.toThrow(
      /is in use by lopt meta-train/,
    );
    release();
    expect((await first).status).toBe('done');
  });
});

describe('run folders', () => {
  it('temp files of killed checkpoint writes are removed when the run resumes', async () => {
    const recipe = parseRecipe(
      {
        name: 'tmp',
        learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 4 } },
        estimators: [
          {
            type: 'truncated-pes',
            family: { type: 'fixed', task: 'quadratic-d4-k10' },
            particles: 2,
            particlesPerUnit: 2,
            truncationLength: 2,
            episodeLength: { min: 4, max: 8 },
          },
        ],
        outerSteps: 4,
        checkpoint: { everySteps: 1, everyMinutes: 60, keep: 2 },
      },
      'test',
    );
    const runDir = join(dir, 'run-tmp');
    await metaTrain({ recipe, runDir, workers: 0, backend: 'wasm', run: async (i) => runTruncationUnit(i), stopAfter: 2 });
    const leftover = join(runDir, 'checkpoints', '.step-00000003.lopt.4242.0a1b2c3d4e5f.tmp');
    await writeFile(leftover, 'half a checkpoint');
    const other = join(runDir, 'checkpoints', 'notes.tmp');
    await writeFile(other, 'not ours');
    const r = await metaTrain({ recipe, runDir, resume: true, workers: 0, backend: 'wasm', run: async (i) => runTruncationUnit(i) });
    expect(r.status).toBe('done');
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(other)).toBe(true);
  });

  it('an output folder that cannot be made fails at once (no endless mkdir on /proc)', async () => {
    const t0 = Date.now();
    await expect(prepareRunDir('/proc/sys/lopt-test/run')).rejects.toThrow(/output folder \/proc\/sys\/lopt-test\/run cannot be created or written/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('lopt meta-train --resume of a folder stopped before its first checkpoint starts it from its recipe', async () => {
    const runDir = join(dir, 'run-early');
    await mkdir(runDir);
    await writeFile(
      join(runDir, 'recipe.json'),
      JSON.stringify({
        name: 'early',
        learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 4 } },
        estimators: [
          {
            type: 'truncated-pes',
            family: { type: 'fixed', task: 'quadratic-d4-k10' },
            particles: 2,
            particlesPerUnit: 2,
            truncationLength: 2,
            episodeLength: { min: 4, max: 8 },
          },
        ],
        outerSteps: 2,
      }),
    );
    expect(await metaTrainCommand({ resume: runDir, workers: 0, backend: 'wasm' })).toBe(0);
    expect(existsSync(join(runDir, 'theta.lopt'))).toBe(true);
    await rm(runDir, { recursive: true });
    await mkdir(runDir);
    await expect(metaTrainCommand({ resume: runDir, workers: 0, backend: 'wasm' })).rejects.toThrow(
      /holds no checkpoint .* and no recipe\.json; start it with --recipe FILE --out/,
    );
  }, 60_000);
});
