// The LAMB-paper preset's machinery in `lopt bench`: a suite entry's own schedule (BERT's warmup +
// polynomial decay) and learning rates carried from a smaller batch by the square-root rule.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { benchSchedule } from '../src/evaluate/baselines.js';
import { runBenchUnit } from '../src/evaluate/benchRun.js';
import { runBench } from '../src/evaluate/runBench.js';
import { parseSuite } from '../tasks/suites.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-scaled-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BASE = 'mlp-mnist8-w8-d1-relu-b16-mup';
const BIG = 'mlp-mnist8-w8-d1-relu-b128-mup';
const bert = { type: 'warmupPolynomial', warmupFraction: 0.1, power: 1 } as const;

describe('suite entry schedules', () => {
  it("warmupPolynomial: BERT's linear warmup then (1 − t/T)^power, computed by hand", () => {
    const T = 50;
    const s = benchSchedule(T, { type: 'warmupPolynomial', warmupFraction: 0.1, power: 2 });
    const w = 5;
    for (const t of [0, 1, 4, 5, 20, 49, 50, 60]) {
      const expected = t < w ? t / w : Math.pow(1 - Math.min(t, T) / T, 2);
      expect(s(t), `t=${t}`).toBeCloseTo(expected, 12);
    }
    // The default is unchanged: 5% warmup then cosine to 0.
    const d = benchSchedule(100);
    expect([d(0), d(5), d(100)]).toEqual([0, 1, 0]);
    expect(d(52.5)).toBeCloseTo(0.5, 12);
  });

  it('the suite validates schedules and carried learning rates, naming what is wrong', () => {
    const suite = (tasks: unknown[]) => parseSuite({ name: 's', description: '', tasks }, 'test suite');
    expect(() => suite([{ task: BASE, steps: 10, schedule: { type: 'warmupPolynomial', power: 1 } }])).toThrow(/tasks\.0\.schedule\.warmupFraction/);
    expect(() => suite([{ task: BASE, steps: 10, schedule: { type: 'step' } }])).toThrow(/tasks\.0\.schedule\.type/);
    expect(() => suite([{ task: BIG, steps: 10, lrScaledFrom: { task: BASE, optimizers: ['lamb'], rule: 'sqrt' } }])).toThrow(
      /tasks\.0\.lrScaledFrom\.task must name another entry of the suite whose learning rates are tuned; got "mlp-mnist8-w8-d1-relu-b16-mup"/,
    );
    expect(() => suite([{ task: BIG, steps: 10, lrScaledFrom: { task: BASE, optimizers: ['lamb'], rule: 'cubic' } }])).toThrow(/tasks\.0\.lrScaledFrom\.rule/);
    const ok = suite([
      { task: BASE, steps: 10, schedule: bert },
      { task: BIG, steps: 10, lrScaledFrom: { task: BASE, optimizers: ['lamb'], rule: 'sqrt' } },
    ]);
    expect(ok.tasks[0]!.schedule).toEqual(bert);
  });
});

describe('learning rates carried by the square-root rule', () => {
  const suite = parseSuite(
    {
      name: 'scaled',
      description: 'a batch ×8 entry with LAMB carried from b16',
      optimizers: ['adam', 'lamb'],
      tasks: [
        { task: BASE, steps: 40, axis: 'baseline', schedule: bert },
        { task: BIG, steps: 5, axis: 'batch', factor: 8, schedule: bert, lrScaledFrom: { task: BASE, optimizers: ['lamb'], rule: 'sqrt' } },
      ],
    },
    'scaled suite',
  );

  it('runs LAMB once on the large batch at the rate selected on the small one × √8, with the entry schedule', async () => {
    const inputs: Parameters<typeof runBenchUnit>[0][] = [];
    const results = await runBench({
      suite,
      optimizers: suite.optimizers!,
      budget: 3,
      seeds: 1,
      outDir: join(dir, 'bench'),
      backend: 'wasm',
      run: (input) => {
        inputs.push(input);
        return runBenchUnit(input);
      },
    });
    expect(inputs.every((i) => JSON.stringify(i.schedule) === JSON.stringify(bert))).toBe(true);
    const [base, big] = results.tasks;
    expect(base!.results.map((r) => r.optimizer)).toEqual(['adam', 'lamb']);
    expect(big!.results.map((r) => r.optimizer)).toEqual(['adam', 'lamb', 'lamb (sqrt-scaled from b16)']);
    const tunedLamb = base!.results[1]!;
    const carried = big!.results[2]!;
    expect(carried.tuned).toBe(false);
    expect(carried.grid.map((g) => g.lr)).toEqual([Number((tunedLamb.selectedLr! * Math.sqrt(8)).toPrecision(6))]);
    // The rate it carried is one LAMB ran at on the base entry (its grid, or an extension of it).
    const tried = inputs.filter((i) => i.task === BASE && i.optimizer.name === 'lamb').flatMap((i) => (i.optimizer.kind === 'baseline' ? i.optimizer.lrs : []));
    expect(tried).toContain(tunedLamb.selectedLr);
    expect(tunedLamb.selectedLr).toBe(
      tunedLamb.grid.reduce((b, g) => (g.innerValidLoss !== null && g.innerValidLoss < (b.innerValidLoss ?? Infinity) ? g : b)).lr,
    );
  });

  it('refuses, before any run, a bench that does not tune the optimizer whose rate is carried', async () => {
    let ran = 0;
    await expect(
      runBench({
        suite,
        optimizers: ['adam'],
        budget: 3,
        seeds: 1,
        outDir: join(dir, 'refused'),
        backend: 'wasm',
        run: (input) => {
          ran += 1;
          return runBenchUnit(input);
        },
      }),
    ).rejects.toThrow(
      `bench: suite entry ${BIG} carries lamb's learning rate from ${BASE}, so lamb must be tuned in this bench: add it to --optimizers (tuned now: adam)`,
    );
    expect(ran).toBe(0);
  });
});
