// The meta-gradient does not depend on where the units ran: in this thread, on 1 worker or on 2.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { useKernels } from '../src/kernels/native.js';
import { parseRecipe } from '../src/meta/recipe.js';
import { runPaths } from '../src/meta/runDir.js';
import { metaTrain } from '../src/meta/trainer.js';
import { UNITS_MODULE, type Units } from '../src/units.js';
import { createUnitPool } from '../src/parallel/unitPool.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-workers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const recipe = parseRecipe(
  {
    name: 'workers',
    seed: 5,
    learnedOptimizer: { arch: 'small_fc_lopt', config: {} },
    estimators: [
      {
        type: 'truncated-pes',
        family: { type: 'mlp', widths: [16], batchSize: { min: 32, max: 32 } },
        particles: 4,
        particlesPerUnit: 1,
        truncationLength: 4,
        episodeLength: { min: 6, max: 12 },
        initialOffset: 6,
      },
    ],
    outerSteps: 3,
    outer: { peakLr: 0.01, warmupSteps: 1 },
  },
  'workers',
);

async function thetaWith(workers: number, tag: string): Promise<Buffer> {
  const pool = await createUnitPool<Units>({ workers, unitsModule: UNITS_MODULE, backend: 'wasm', onWarning: () => undefined });
  try {
    const r = await metaTrain({
      recipe,
      runDir: join(dir, `w${workers}-${tag}`),
      run: (input) => pool.run('truncation', input),
      workers,
      backend: 'wasm',
    });
    expect(r.status).toBe('done');
    return Buffer.from(r.theta.buffer);
  } finally {
    await pool.close();
  }
}

describe('worker pool', () => {
  for (const mode of ['native', 'ops'] as const) {
    it(`1 and 2 workers (and this thread) give bit-identical meta-training (${mode} path)`, async () => {
      const prev = useKernels(mode);
      try {
        const one = await thetaWith(1, mode);
        const two = await thetaWith(2, mode);
        const here = await thetaWith(0, mode);
        expect(two.equals(one)).toBe(true);
        expect(here.equals(one)).toBe(true);
      } finally {
        useKernels(prev);
      }
    });
  }

  it('the two paths differ only by float rounding: same meta-losses and meta-gradient norms', async () => {
    const prev = useKernels('ops');
    await thetaWith(0, 'ops-cmp');
    useKernels('native');
    await thetaWith(0, 'native-cmp');
    useKernels(prev);
    const read = async (tag: string) =>
      (await readFile(runPaths(join(dir, `w0-${tag}`)).metrics, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { metaLoss: number; metaGradNorm: number });
    const ops = await read('ops-cmp');
    const native = await read('native-cmp');
    expect(native).toHaveLength(ops.length);
    ops.forEach((o, i) => {
      // Inner losses agree to float32 rounding; the gradient amplifies them by 1/2σ.
      expect(Math.abs(native[i]!.metaLoss - o.metaLoss)).toBeLessThan(1e-5 * o.metaLoss);
      expect(Math.abs(native[i]!.metaGradNorm - o.metaGradNorm)).toBeLessThan(1e-2 * o.metaGradNorm);
    });
  });
});
