// Wall time of `lopt bench` on the shipped smoke suite (every default baseline tuned), 2 workers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchRunInput } from '../../src/evaluate/benchRun.js';
import { DEFAULT_BENCH_OPTIMIZERS, runBench } from '../../src/evaluate/runBench.js';
import { createUnitPool } from '../../src/parallel/unitPool.js';
import { UNITS_MODULE, type Units } from '../../src/units.js';
import { loadSuite, shippedSuitePath } from '../../tasks/suites.js';
import type { BenchRow } from './row.js';

export async function benchSmokeSuite(): Promise<BenchRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'lopt-bench-smoke-'));
  const pool = await createUnitPool<Units>({ workers: 2, unitsModule: UNITS_MODULE, backend: 'wasm', onWarning: () => undefined });
  const t0 = performance.now();
  let runs = 0;
  try {
    await runBench({
      suite: loadSuite(shippedSuitePath('smoke')),
      optimizers: DEFAULT_BENCH_OPTIMIZERS,
      budget: 7,
      seeds: 1,
      outDir: dir,
      backend: 'wasm',
      run: (input: BenchRunInput) => pool.run('bench-run', input),
      onEvent: (e) => {
        if (e.type === 'run-done') runs += 1;
      },
    });
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  return [
    {
      name: 'lopt bench --suite smoke, 2 workers (seconds)',
      value: seconds,
      goal: '< 120',
      ok: seconds < 120,
      detail: `${runs} runs (grids of 7 learning rates and their extensions)`,
    },
  ];
}
