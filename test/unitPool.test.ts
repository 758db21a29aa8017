import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createUnitPool, toRunnableFile, type UnitPool } from '../src/parallel/unitPool.js';
import type { MatmulInput, MatmulOutput, PoolUnits } from './helpers/poolUnits.js';
import { uniformValues } from './helpers/values.js';

const UNITS = new URL('./helpers/poolUnits.ts', import.meta.url).href;
const tmp = mkdtempSync(join(tmpdir(), 'lopt-unitpool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const values = uniformValues;

function matmulInput(seed: number, size = 48, reps = 3): MatmulInput {
  return { a: values(size * size, seed), b: values(size * size, seed + 1), m: size, k: size, n: size, seed, reps };
}

function bytes(o: MatmulOutput): Buffer {
  return Buffer.concat([
    Buffer.from(o.out.buffer, o.out.byteOffset, o.out.byteLength),
    Buffer.from(o.stats.rowSums.buffer, o.stats.rowSums.byteOffset, o.stats.rowSums.byteLength),
  ]);
}

async function withPool<T>(
  opts: { workers: number; retries?: number; warnings?: string[]; backend?: 'wasm' | 'cpu' },
  body: (pool: UnitPool<PoolUnits>) => Promise<T>,
): Promise<T> {
  const pool = await createUnitPool<PoolUnits>({
    workers: opts.workers,
    unitsModule: UNITS,
    backend: opts.backend ?? 'wasm',
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    onWarning: (m) => opts.warnings?.push(m),
  });
  try {
    return await body(pool);
  } finally {
    await pool.close();
  }
}

const SEEDS = [11, 12, 13, 14, 15];

describe('unit pool memory', () => {
  it('keeps no reply alive once its caller lets go (meta-training ran out of memory in hours when it did)', async () => {
    // test/vitest.config.ts starts the test processes with --expose-gc.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error('this test needs node --expose-gc (test/vitest.config.ts sets it)');
    const refs: WeakRef<object>[] = [];
    await withPool({ workers: 1 }, async (pool) => {
      for (let i = 0; i < 6; i++) refs.push(new WeakRef(await pool.run('matmul', matmulInput(20 + i))));
      // Let the promise machinery settle, then collect while the pool is still open.
      await new Promise((r) => setTimeout(r, 50));
      gc();
      await new Promise((r) => setTimeout(r, 50));
      gc();
      expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    });
  });
});

describe('unit pool', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`gives bit-identical results with 0, 1 and 2 workers (${backend})`, async () => {
      const runAll = (workers: number): Promise<Buffer[]> =>
        withPool({ workers, backend }, async (pool) => {
          const outs = await Promise.all(SEEDS.map((s) => pool.run('matmul', matmulInput(s))));
          for (const o of outs) {
            expect(o.out).toBeInstanceOf(Float32Array);
            expect(o.out.length).toBe(48 * 48);
            expect(o.stats.rowSums.length).toBe(48);
            expect(o.stats.reps).toBe(3);
          }
          return outs.map(bytes);
        });
      const inProcess = await runAll(0);
      const one = await runAll(1);
      const two = await runAll(2);
      // Different seeds give different results (the comparison below means something).
      expect(inProcess[0]!.equals(inProcess[1]!)).toBe(false);
      for (let i = 0; i < SEEDS.length; i++) {
        expect(one[i]!.equals(inProcess[i]!)).toBe(true);
        expect(two[i]!.equals(inProcess[i]!)).toBe(true);
      }
    });
  }

  it('runs many concurrent units on 2 workers and counts busy time per worker', async () => {
    await withPool({ workers: 2 }, async (pool) => {
      expect(pool.workers).toBe(2);
      expect(pool.busySeconds()).toEqual([0, 0]);
      const outs = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.run('matmul', matmulInput(100 + i, 64, 4))));
      expect(outs).toHaveLength(12);
      const busy = pool.busySeconds();
      expect(busy).toHaveLength(2);
      for (const s of busy) expect(s).toBeGreaterThan(0);
    });
    await withPool({ workers: 0 }, async (pool) => {
      expect(pool.workers).toBe(0);
      expect(pool.busySeconds()).toEqual([0]);
      await pool.run('matmul', matmulInput(1));
      expect(pool.busySeconds()).toHaveLength(1);
      expect(pool.busySeconds()[0]).toBeGreaterThan(0);
    });
    await withPool({ workers: 3 }, async (pool) => {
      expect(pool.busySeconds()).toHaveLength(3);
    });
  });

  it('leaves no tensors behind in this thread with workers = 0', async () => {
    await withPool({ workers: 0 }, async (pool) => {
      await pool.run('matmul', matmulInput(1)); // backend warm-up
      const before = tf.memory().numTensors;
      await Promise.all(SEEDS.map((s) => pool.run('matmul', matmulInput(s))));
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  for (const workers of [0, 2]) {
    it(`rejects a thrown error with its message and does not retry it (workers = ${workers})`, async () => {
      const warnings: string[] = [];
      await withPool({ workers, warnings }, async (pool) => {
        const err = await pool.run('throw', { message: 'boom 42' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).message).toContain("unit 'throw'");
        expect((err as Error).message).toContain('unit asked to throw: boom 42');
        expect(((err as Error).cause as Error).message).toBe('unit asked to throw: boom 42');
        // The pool still works afterwards.
        const ok = await pool.run('matmul', matmulInput(5));
        expect(ok.out.length).toBe(48 * 48);
      });
      expect(warnings).toEqual([]);
    });
  }

  it('re-runs a unit whose worker crashed on a fresh worker, with a warning', async () => {
    const warnings: string[] = [];
    const marker = join(tmp, 'crash-once');
    await withPool({ workers: 2, warnings }, async (pool) => {
      const out = await pool.run('crash', { marker });
      expect(out).toEqual({ survived: true });
      // Both slots keep working after the replacement.
      const outs = await Promise.all(SEEDS.map((s) => pool.run('matmul', matmulInput(s))));
      expect(outs).toHaveLength(SEEDS.length);
      expect(pool.busySeconds()).toHaveLength(2);
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^worker [01] crashed \(Error: worker exited with code: 1\); re-running unit 'crash'$/);
  });

  it('rejects (without hanging) a unit whose worker crashes on every try', async () => {
    const warnings: string[] = [];
    await withPool({ workers: 1, retries: 2, warnings }, async (pool) => {
      const err = await pool.run('crash-always', {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain("unit 'crash-always'");
      expect((err as Error).message).toContain('worker exited with code: 3');
      expect(((err as Error).cause as Error).message).toBe('worker exited with code: 3');
      // The replacement worker still runs units.
      const ok = await pool.run('matmul', matmulInput(5));
      expect(ok.out.length).toBe(48 * 48);
    });
    expect(warnings).toHaveLength(2);
    for (const w of warnings) expect(w).toContain("re-running unit 'crash-always'");
  }, 60_000);

  it('settles every unit when closed, and refuses units after close', async () => {
    const pool = await createUnitPool<PoolUnits>({ workers: 1, unitsModule: UNITS, backend: 'wasm', onWarning: () => {} });
    const pending = Array.from({ length: 4 }, (_, i) =>
      pool.run('matmul', matmulInput(i, 96, 8)).then(
        () => 'ok',
        () => 'rejected',
      ),
    );
    await pool.close();
    const settled = await Promise.all(pending);
    expect(settled.every((s) => s === 'ok' || s === 'rejected')).toBe(true);
    await expect(pool.run('matmul', matmulInput(1))).rejects.toThrow(/closed/);
  });

  it('maps project TypeScript to its dist/ build, and explains a missing build', () => {
    const root = new URL('..', import.meta.url);
    expect(toRunnableFile(new URL('test/helpers/poolUnits.ts', root).href, 'units module')).toBe(new URL('dist/test/helpers/poolUnits.js', root).pathname);
    expect(() => toRunnableFile(new URL('test/helpers/noSuchUnits.ts', root).href, 'units module')).toThrow(/npm run build/);
    expect(() => toRunnableFile('/elsewhere/units.ts', 'units module')).toThrow(/compiled \.js/);
    expect(() => toRunnableFile('relative/units.js', 'units module')).toThrow(/absolute/);
  });

  it('a kind not in the units table is refused by name, in this thread and in a worker', async () => {
    for (const workers of [0, 1]) {
      await withPool({ workers }, async (pool) => {
        const run = pool.run as (kind: string, input: unknown) => Promise<unknown>;
        for (const kind of ['no-such-unit', '__proto__', 'constructor', 'toString']) {
          await expect(run(kind, {}), `${kind} on ${workers} workers`).rejects.toThrow(
            new RegExp(`unknown work unit kind '${kind}' \\(.*poolUnits\\.[jt]s knows: matmul, throw, crash, crash-always\\)`),
          );
        }
      });
    }
  });

  it('pool.run is checked by the compiler against the units table', () => {
    // A file that misuses a typed pool, compiled by tsc: each misuse must be an error.
    const dir = mkdtempSync(join(tmpdir(), 'lopt-pool-types-'));
    const file = join(dir, 'misuse.ts');
    const src = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)).replace(/\.ts$/, '.js'));
    writeFileSync(
      file,
      [
        `import type { UnitPool } from ${src('../src/parallel/unitPool.ts')};`,
        `import type { PoolUnits } from ${src('./helpers/poolUnits.ts')};`,
        'export async function misuse(pool: UnitPool<PoolUnits>): Promise<void> {',
        "  await pool.run('matmull', {});", // line 4: unknown kind
        "  await pool.run('matmul', { seed: 1 });", // line 5: incomplete input
        "  const out = await pool.run('crash', { marker: 'x' });",
        '  const n: number = out.survived;', // line 7: wrong output type
        "  const ok = await pool.run('matmul', { a: new Float32Array(1), b: new Float32Array(1), m: 1, k: 1, n: 1, seed: 0, reps: 0 });",
        '  ok.out.length;',
        '}',
      ].join('\n'),
    );
    const tsc = spawnSync(
      process.execPath,
      [
        join(fileURLToPath(new URL('..', import.meta.url)), 'node_modules/typescript/bin/tsc'),
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        file,
      ],
      { encoding: 'utf8' },
    );
    rmSync(dir, { recursive: true, force: true });
    const errorLines = [...tsc.stdout.matchAll(/misuse\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1]));
    expect(errorLines, tsc.stdout).toEqual([4, 5, 7]);
  }, 60_000);

  it('times 8 matmul units on 1 vs 2 workers (printed, not asserted)', async () => {
    const input = (i: number): MatmulInput => matmulInput(1000 + i, 256, 90);
    const timeOn = (workers: number): Promise<{ wall: number; unit: number }> =>
      withPool({ workers }, async (pool) => {
        // Warm up: each worker initialises its backend on its first unit.
        await Promise.all(Array.from({ length: 2 * Math.max(1, workers) }, (_, i) => pool.run('matmul', input(i))));
        const busy0 = pool.busySeconds().reduce((p, s) => p + s, 0);
        const start = performance.now();
        await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run('matmul', input(i))));
        const wall = (performance.now() - start) / 1000;
        const unit = (pool.busySeconds().reduce((p, s) => p + s, 0) - busy0) / 8;
        return { wall, unit };
      });
    const one = await timeOn(1);
    const two = await timeOn(2);
    console.log(
      `unit pool: 8 matmul units (~${(one.unit * 1000).toFixed(0)} ms each on 1 worker): ` +
        `1 worker ${one.wall.toFixed(2)} s, 2 workers ${two.wall.toFixed(2)} s, ratio 1/2 = ${(one.wall / two.wall).toFixed(2)}×`,
    );
  });
});
