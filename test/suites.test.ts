import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { taskFromName } from '../tasks/registry.js';
import { loadSuite, parseSuite, shippedSuitePath } from '../tasks/suites.js';
import { trainWithAdam } from './helpers/taskChecks.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

/** One learning rate per family (Adam under SP, μAdam with the task's mupScale under μP), good enough to show each task trains. */
const LR: Record<string, number> = {
  mlp: 3e-3,
  conv: 3e-2,
  transformer: 1e-2,
  quadratic: 0.1,
  'noisy-quadratic': 0.05,
  rosenbrock: 0.05,
  logreg: 0.05,
};
const MUP_LR: Record<string, number> = { mlp: 0.1, conv: 0.3, transformer: 1e-2 };

describe('shipped suites', () => {
  it('a suite path that is not a small regular file is refused before it is read', () => {
    expect(() => loadSuite('/dev/zero')).toThrow('suite /dev/zero: not a regular file');
    expect(() => loadSuite('/no/such/suite.json')).toThrow('suite /no/such/suite.json: cannot be read (ENOENT)');
  });

  it('smoke and generalization load and name only buildable tasks', () => {
    const smoke = loadSuite(shippedSuitePath('smoke'));
    const gen = loadSuite(shippedSuitePath('generalization'));
    expect(smoke.tasks.length).toBeGreaterThanOrEqual(8);
    const families = new Set(smoke.tasks.map((t) => taskFromName(t.task).meta.family));
    expect([...families].sort()).toEqual(['conv', 'logreg', 'mlp', 'noisy-quadratic', 'quadratic', 'rosenbrock', 'transformer']);
    const axes = new Set(gen.tasks.map((t) => t.axis));
    for (const axis of ['width', 'depth', 'horizon', 'batch', 'dataset', 'architecture']) expect(axes.has(axis as never), axis).toBe(true);
    const widths = gen.tasks.filter((t) => t.axis === 'width').map((t) => taskFromName(t.task).meta.width);
    expect(Math.max(...(widths as number[]))).toBe(32 * 32);
    const batches = gen.tasks.filter((t) => t.axis === 'batch').map((t) => taskFromName(t.task).meta.batchSize);
    expect(Math.max(...batches)).toBe(8192);
  });

  it("seeds: the masked LM at batch ×1, ×8, ×64 for the same epochs with BERT's schedule and LAMB's √-scaled rate, and every preference loss", () => {
    const seeds = loadSuite(shippedSuitePath('seeds'));
    const tasks = seeds.tasks.map((e) => ({ e, meta: taskFromName(e.task).meta }));
    const batchAxis = tasks.filter(({ e, meta }) => meta.family === 'mlm' && (e.axis === 'batch' || e.task === seeds.tasks[0]!.task));
    const base = batchAxis[0]!;
    expect(batchAxis.map(({ meta }) => meta.batchSize / base.meta.batchSize)).toEqual([1, 8, 64]);
    for (const { e, meta } of batchAxis) {
      expect(meta.batchSize * e.steps).toBe(base.meta.batchSize * base.e.steps); // same number of sequences seen
      expect(e.schedule).toEqual({ type: 'warmupPolynomial', warmupFraction: 0.1, power: 1 });
      if (e !== base.e) expect(e.lrScaledFrom).toEqual({ task: base.e.task, optimizers: ['lamb'], rule: 'sqrt' });
    }
    expect(new Set(tasks.filter(({ meta }) => meta.family === 'mlm').map(({ e }) => e.task.split('-').slice(-2).join('-')))).toEqual(
      new Set(['nezha-sp', 'nezha-mup', 'abs-mup']),
    );
    expect(tasks.filter(({ meta }) => meta.family === 'preference').map(({ e }) => e.task.split('-')[2])).toEqual(['dpo', 'simpo', 'mipo']);
    expect(seeds.optimizers).toEqual(['adam', 'adamw', 'lamb']);
    // The generalization suite, the shipped optimizer's yardstick, has none of them.
    const gen = loadSuite(shippedSuitePath('generalization')).tasks.map((e) => taskFromName(e.task).meta.family);
    expect(gen.filter((f) => f === 'mlm' || f === 'preference')).toEqual([]);
  });

  it('reality-check: image MLP and conv workloads at batch 128 → 8192 (×4) for the same epochs, every optimizer of the study, the masked LM at its largest batch', () => {
    const suite = loadSuite(shippedSuitePath('reality-check'));
    expect(suite.optimizers).toEqual(['nesterov', 'lars', 'tvlars', 'adam', 'adamw', 'lamb', 'mkor', 'mkorlamb']);
    const entries = suite.tasks.map((e) => ({ e, task: taskFromName(e.task) }));
    for (const family of ['mlp', 'conv']) {
      const study = entries.filter(({ task }) => task.meta.family === family);
      expect(study.map(({ task }) => task.meta.batchSize)).toEqual([128, 512, 2048, 8192]);
      // Same epochs: steps × batch within half a batch of the smallest batch's examples.
      const examples = study[0]!.e.steps * 128;
      for (const { e, task } of study) {
        expect(Math.abs(e.steps * task.meta.batchSize - examples)).toBeLessThanOrEqual(task.meta.batchSize / 2);
        expect(e.schedule).toEqual({ type: 'warmupPolynomial', warmupFraction: 0.05, power: 2 });
        // MKOR needs the layers' statistics: every task of the study reports them.
        expect(task.layers?.length).toBeGreaterThan(0);
      }
      // The workload's names differ only in the batch size.
      expect(new Set(study.map(({ e }) => e.task.replace(/-b\d+/, ''))).size).toBe(1);
    }
    const mlm = entries.filter(({ task }) => task.meta.family === 'mlm');
    expect(mlm.map(({ e }) => e.schedule)).toEqual([{ type: 'warmupPolynomial', warmupFraction: 0.1, power: 1 }]);
  });

  it.each(loadSuite(shippedSuitePath('smoke')).tasks.map((t) => [t.task, t.steps] as const))(
    'smoke: %s trains with Adam to a loss clearly below its initial loss',
    async (name, steps) => {
      const task = taskFromName(name);
      const muP = task.meta.parametrization === 'mup';
      const lr = (muP ? MUP_LR : LR)[task.meta.family]!;
      await trainWithAdam(task, 2, lr, 1, muP); // builds cached data and constants
      const before = tf.memory().numTensors;
      const r = await trainWithAdam(task, steps, lr, 1, muP);
      expect(r.last, `first ${r.first}, last ${r.last}`).toBeLessThan(0.8 * r.first);
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});

describe('memory', () => {
  it.each(loadSuite(shippedSuitePath('smoke')).tasks.map((t) => [t.task] as const))('%s: no tensor growth over 1,000 training steps', async (name) => {
    const task = taskFromName(name);
    const muP = task.meta.parametrization === 'mup';
    await trainWithAdam(task, 2, 1e-4, 2, muP);
    const before = tf.memory().numTensors;
    await trainWithAdam(task, 1000, 1e-4, 2, muP);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('bad suites are refused with the field path and what is allowed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lopt-suite-'));
  it('schema errors, unknown tasks, bad JSON', () => {
    expect(() => parseSuite({ name: 's', description: '', tasks: [] }, 's.json')).toThrow(/s.json: tasks: .*>=1/);
    expect(() => parseSuite({ name: 's', description: '', tasks: [{ task: 'mlp-mnist8-w32-d1', steps: 0 }] }, 's.json')).toThrow(
      /s.json: tasks.0.steps: .*>=1/,
    );
    expect(() => parseSuite({ name: 's', description: '', tasks: [{ task: 'mlp-mnist8-w32-d1', steps: 5, axis: 'color' }] }, 's.json')).toThrow(
      /s.json: tasks.0.axis: .*width/,
    );
    expect(() => parseSuite({ name: 's', description: '', tasks: [{ task: 'vgg', steps: 5 }] }, 's.json')).toThrow(/s.json: tasks.0.task: unknown task 'vgg'/);
    expect(() => parseSuite({ name: 's', description: '', tasks: [{ task: 'mlp-mnist8-w32-d1', steps: 5, lr: 1 }] }, 's.json')).toThrow(
      /s.json: tasks.0: .*lr/,
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"name": "s", ');
    expect(() => loadSuite(bad)).toThrow(/bad.json: not valid JSON/);
  });
});
