// The MetaTrainer end to end on small quadratic families: it learns, it resumes bit-identically
// from any stop, it survives a corrupt checkpoint, and it refuses bad recipes and folders up front.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../src/checkpoint/index.js';
import { useKernels } from '../src/kernels/native.js';
import type { UnitRunner } from '../src/meta/estimator.js';
import type { MetaTrainEvent } from '../src/meta/events.js';
import { loadRecipe, parseRecipe, type Recipe } from '../src/meta/recipe.js';
import { listCheckpoints, runPaths } from '../src/meta/runDir.js';
import { metaTrain, type MetaTrainOptions } from '../src/meta/trainer.js';
import { runTruncationUnit } from '../src/meta/truncationUnit.js';

const inProcess: UnitRunner = async (input) => runTruncationUnit(input);
let dir: string;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-trainer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function recipe(overrides: Record<string, unknown> = {}): Recipe {
  return parseRecipe(
    {
      name: 'test',
      seed: 3,
      learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 8 } },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'fixed', task: 'quadratic-d4-k10' },
          particles: 4,
          particlesPerUnit: 2,
          truncationLength: 5,
          episodeLength: { min: 8, max: 16 },
          initialOffset: 8,
        },
      ],
      outerSteps: 6,
      outer: { peakLr: 0.01, endLr: 0.001, warmupSteps: 1 },
      checkpoint: { everySteps: 2, everyMinutes: 60, keep: 10 },
      ...overrides,
    },
    'test',
  );
}

async function train(runDir: string, r: Recipe, extra: Partial<MetaTrainOptions> = {}) {
  const events: MetaTrainEvent[] = [];
  const result = await metaTrain({ recipe: r, runDir, run: inProcess, workers: 0, backend: 'wasm', onEvent: (e) => events.push(e), ...extra });
  return { result, events };
}

/** metrics.jsonl without the wall-clock fields. */
async function metrics(runDir: string): Promise<unknown[]> {
  const text = await readFile(runPaths(runDir).metrics, 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => {
      const { seconds: _s, innerStepsPerSecond: _r, innerStepsPerSecondPerWorker: _w, etaSeconds: _e, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
}

describe('MetaTrainer', () => {
  it('lowers the meta-loss of MLPLOpt on a small quadratic family', async () => {
    const r = recipe({
      learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 8 } },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'fixed', task: 'quadratic-d8-k10-diag' },
          particles: 8,
          particlesPerUnit: 8,
          truncationLength: 10,
          episodeLength: { steps: 40 },
          initialOffset: 40,
        },
      ],
      outerSteps: 120,
      outer: { peakLr: 0.03, endLr: 0.01, warmupSteps: 5 },
      checkpoint: { everySteps: 1000, everyMinutes: 60, keep: 1 },
    });
    const { result, events } = await train(join(dir, 'learns'), r);
    expect(result.status).toBe('done');
    const losses = events.filter((e) => e.type === 'outer-step').map((e) => e.metaLoss);
    const first = losses.slice(0, 20).reduce((a, b) => a + b, 0) / 20;
    const last = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
    expect(last).toBeLessThan(0.8 * first);
  });

  for (const mode of ['native', 'ops'] as const) {
    it(`resumes bit-identically after a graceful stop, and after a kill between checkpoints (${mode} path)`, async () => {
      const prev = useKernels(mode);
      try {
        const r = recipe();
        const full = await train(join(dir, `full-${mode}`), r);
        expect(full.result.status).toBe('done');

        // Graceful stop after 3 steps (as `q` or Ctrl-C): a checkpoint at step 3, then --resume.
        const stoppedDir = join(dir, `stopped-${mode}`);
        const stopped = await train(stoppedDir, r, { stopAfter: 3 });
        expect(stopped.result.status).toBe('stopped');
        expect(stopped.events.some((e) => e.type === 'checkpoint' && e.reason === 'stop' && e.step === 3)).toBe(true);
        const resumed = await train(stoppedDir, r, { resume: true });
        expect(resumed.events[0]).toMatchObject({ type: 'run-start', startStep: 3 });
        expect(Buffer.from(resumed.result.theta.buffer).equals(Buffer.from(full.result.theta.buffer))).toBe(true);
        expect(await metrics(stoppedDir)).toEqual(await metrics(join(dir, `full-${mode}`)));

        // kill -9 after step 5: the stop checkpoint never existed, the newest is step 4.
        const killedDir = join(dir, `killed-${mode}`);
        await train(killedDir, r, { stopAfter: 5 });
        await rm(join(runPaths(killedDir).checkpoints, 'step-00000005.lopt'));
        const again = await train(killedDir, r, { resume: true });
        expect(again.events[0]).toMatchObject({ type: 'run-start', startStep: 4 });
        expect(Buffer.from(again.result.theta.buffer).equals(Buffer.from(full.result.theta.buffer))).toBe(true);
        expect(await metrics(killedDir)).toEqual(await metrics(join(dir, `full-${mode}`)));
      } finally {
        useKernels(prev);
      }
    });
  }

  it('zeroOutput starts theta with the MLP output layer at zero (and only it)', async () => {
    const base = recipe();
    const zero = recipe({ learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 8 }, zeroOutput: true } });
    const thetaAt0 = async (r: Recipe, name: string) => {
      const res = await train(join(dir, name), r, { stopAfter: 0 });
      expect(res.result.step).toBe(0);
      const [newest] = await listCheckpoints(join(dir, name));
      const ckpt = await loadCheckpoint(newest!.path);
      return Object.fromEntries(ckpt.theta.names.map((n, i) => [n, Array.from(ckpt.theta.data[i]!)]));
    };
    const a = await thetaAt0(base, 'zero-a');
    const b = await thetaAt0(zero, 'zero-b');
    for (const name of Object.keys(a)) {
      if (name === 'mlp/w2' || name === 'mlp/b2') {
        expect(b[name]!.every((x) => x === 0)).toBe(true);
        expect(a[name]!.some((x) => x !== 0) || name === 'mlp/b2').toBe(true);
      } else expect(b[name]).toEqual(a[name]);
    }
  });

  it('falls back to the previous checkpoint when the newest is corrupt, and says so', async () => {
    const r = recipe();
    const runDir = join(dir, 'corrupt');
    await train(runDir, r, { stopAfter: 4 });
    const [newest] = await listCheckpoints(runDir);
    expect(newest!.step).toBe(4);
    await writeFile(newest!.path, Buffer.from('not a checkpoint at all'));
    const { events, result } = await train(runDir, r, { resume: true });
    const warning = events.find((e) => e.type === 'warning');
    expect(warning).toBeDefined();
    expect((warning as { message: string }).message).toMatch(/step-00000002\.lopt.*step-00000004\.lopt is unusable/);
    expect(events.find((e) => e.type === 'run-start')).toMatchObject({ startStep: 2 });
    expect(result.status).toBe('done');
  });

  it('falls back when one bit of the newest checkpoint flipped (its checksum fails), naming the file', async () => {
    const r = recipe();
    const runDir = join(dir, 'bitflip');
    await train(runDir, r, { stopAfter: 4 });
    const [newest] = await listCheckpoints(runDir);
    const bytes = await readFile(newest!.path);
    bytes[bytes.length >> 1]! ^= 0x01;
    await writeFile(newest!.path, bytes);
    const { events, result } = await train(runDir, r, { resume: true });
    const warning = events.find((e) => e.type === 'warning') as { message: string } | undefined;
    expect(warning?.message).toMatch(/step-00000004\.lopt is unusable.*checksum mismatch/);
    expect(events.find((e) => e.type === 'run-start')).toMatchObject({ startStep: 2 });
    expect(result.status).toBe('done');
  });

  it('falls back when the newest checkpoint decodes but holds invalid training state, naming the file and the field', async () => {
    const r = recipe();
    const base = join(dir, 'invalid-state');
    await train(base, r, { stopAfter: 4 });
    const [newest] = await listCheckpoints(base);
    const original = await loadCheckpoint(newest!.path);
    type State = { step: number; estimators: { particles: { episode: number; step: number; length: number }[]; units: unknown[] }[] };
    const edits: [string, (s: State, c: Checkpoint) => void, RegExp][] = [
      ['negative particle step', (s) => (s.estimators[0]!.particles[0]!.step = -5), /particle 0: episode, step and length must be non-negative integers/],
      ['empty unit list', (s) => (s.estimators[0]!.units = []), /expected the state of 2 units, found a list of 0/],
      [
        'episode length 1e15',
        (s) => (s.estimators[0]!.particles[1]!.length = 1e15),
        /particle 1: episode \d+ is \d+ steps long, the state says 1000000000000000/,
      ],
      [
        'step past the episode',
        (s) => (s.estimators[0]!.particles[1]!.step = s.estimators[0]!.particles[1]!.length + 1),
        /particle 1: step \d+ is past the end of its \d+-step episode/,
      ],
      ['step unlike the file name', (s) => (s.step = 3), /training\.state\.step is 3, but the file is named for step 4/],
      ['provenance unlike the file name', (_s, c) => (c.provenance.outerStep = 7), /provenance\.outerStep is 7, but the file is named for step 4/],
      [
        'non-finite unit numbers',
        (s) => ((s.estimators[0]!.units[0] as { numbers: unknown[] }).numbers = ['1']),
        /unit 0: numbers must be a list of at most 10000 finite numbers/,
      ],
    ];
    for (const [label, edit, problem] of edits) {
      const runDir = join(dir, `invalid-state-${label.replace(/\W+/g, '-')}`);
      await cp(base, runDir, { recursive: true });
      const edited = structuredClone(original);
      edit(edited.training!.state as unknown as State, edited);
      await saveCheckpoint(join(runPaths(runDir).checkpoints, 'step-00000004.lopt'), edited);
      const { events, result } = await train(runDir, r, { resume: true });
      const warning = events.find((e) => e.type === 'warning') as { message: string } | undefined;
      expect(warning?.message, label).toMatch(/resuming from the older checkpoint .*step-00000002\.lopt: .*step-00000004\.lopt is unusable/);
      expect(warning?.message, label).toMatch(problem);
      expect(
        events.find((e) => e.type === 'run-start'),
        label,
      ).toMatchObject({ startStep: 2 });
      expect(result.status, label).toBe('done');
    }
  });

  it("resumes with the run folder's own recipe.json even when the original recipe left fields to their defaults", async () => {
    // `lopt meta-train --resume DIR` reads DIR/recipe.json, where every key is written out; the
    // recipe hash must not depend on which keys the original file gave.
    const sparse = parseRecipe(
      {
        name: 'sparse',
        seed: 3,
        learnedOptimizer: { arch: 'mlp_lopt', config: { hiddenSize: 8 } },
        estimators: [
          { type: 'truncated-pes', family: { type: 'fixed', task: 'quadratic-d4-k10' }, particles: 4, truncationLength: 5, episodeLength: { steps: 10 } },
        ],
        outerSteps: 4,
        outer: { peakLr: 0.01 },
        checkpoint: { everySteps: 2 },
      },
      'sparse',
    );
    const runDir = join(dir, 'sparse');
    await train(runDir, sparse, { stopAfter: 2 });
    const { recipe: fromFolder } = await loadRecipe(runPaths(runDir).recipe);
    const { result, events } = await train(runDir, fromFolder, { resume: true });
    expect(events.find((e) => e.type === 'run-start')).toMatchObject({ startStep: 2 });
    expect(result.status).toBe('done');
  });

  it('refuses to resume from a folder with no checkpoint, or from another recipe', async () => {
    await mkdir(join(dir, 'empty'), { recursive: true });
    await expect(train(join(dir, 'empty'), recipe(), { resume: true })).rejects.toThrow(/holds no checkpoint/);
    const runDir = join(dir, 'other');
    await train(runDir, recipe(), { stopAfter: 2 });
    await expect(train(runDir, recipe({ seed: 4 }), { resume: true })).rejects.toThrow(/written by another recipe/);
  });

  it('fails before any work on an unwritable output folder', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const events: MetaTrainEvent[] = [];
    await expect(
      metaTrain({ recipe: recipe(), runDir: join(file, 'run'), run: inProcess, workers: 0, backend: 'wasm', onEvent: (e) => events.push(e) }),
    ).rejects.toThrow(/output folder .* cannot be created or written \(ENOTDIR\)/);
    expect(events).toEqual([]);
  });

  it('stops with a clear error when a checkpoint cannot be written, leaving the previous one intact', async () => {
    const runDir = join(dir, 'write-fails');
    // A directory where step 4's checkpoint file should go: the atomic rename over it fails.
    await mkdir(join(runPaths(runDir).checkpoints, 'step-00000004.lopt', 'blocker'), { recursive: true });
    const { result, events } = await train(runDir, recipe());
    expect(result.status).toBe('failed');
    expect(result.error!.message).toMatch(/could not write the checkpoint/);
    expect(events.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', checkpoint: expect.stringMatching(/step-00000002\.lopt$/) });
    const previous = (await listCheckpoints(runDir)).find((c) => c.step === 2);
    expect(previous).toBeDefined();
  });

  it('stops with a checkpoint and the error when a unit fails', async () => {
    const runDir = join(dir, 'unit-fails');
    let calls = 0;
    const flaky: UnitRunner = async (input) => {
      calls += 1;
      if (calls > 5) throw new Error('worker 1 crashed twice (out of memory)');
      return runTruncationUnit(input);
    };
    const { result, events } = await train(runDir, recipe(), { run: flaky });
    expect(result.status).toBe('failed');
    expect(result.error!.message).toMatch(/out of memory/);
    // Two steps of two units succeeded, the third step failed: the state of step 2 is saved.
    expect(events.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', step: 2 });
    expect((await listCheckpoints(runDir)).map((c) => c.step)).toContain(2);
  });

  it('a step where one of two estimators fails commits neither: resuming continues exactly', async () => {
    const two = recipe({
      estimators: [0, 1].map(() => ({
        type: 'truncated-pes',
        family: { type: 'fixed', task: 'quadratic-d4-k10' },
        particles: 2,
        particlesPerUnit: 2,
        truncationLength: 3,
        episodeLength: { steps: 7 },
      })),
      outerSteps: 4,
      // No periodic checkpoint: the failure's own checkpoint is the one the resume reads.
      checkpoint: { everySteps: 100, everyMinutes: 60, keep: 3 },
    });
    const full = await train(join(dir, 'two-full'), two);
    const runDir = join(dir, 'two-fail');
    let calls = 0;
    // Step 3's second estimator fails (calls 1–4 are steps 1–2, call 5 is step 3's first estimator).
    const failing: UnitRunner = async (input) => {
      calls += 1;
      if (calls === 6) throw new Error('unit lost');
      return runTruncationUnit(input);
    };
    const failed = await train(runDir, two, { run: failing });
    expect(failed.result.status).toBe('failed');
    expect(failed.result.step).toBe(2);
    const resumed = await train(runDir, two, { resume: true });
    expect(Buffer.from(resumed.result.theta.buffer).equals(Buffer.from(full.result.theta.buffer))).toBe(true);
  });

  it('does not grow the tensor count over many outer steps', async () => {
    const r = recipe({ outerSteps: 30, checkpoint: { everySteps: 10, everyMinutes: 60, keep: 2 } });
    await train(join(dir, 'warm'), recipe({ outerSteps: 2 }));
    const before = tf.memory().numTensors;
    await train(join(dir, 'leak'), r);
    expect(tf.memory().numTensors).toBe(before);
    expect((await listCheckpoints(join(dir, 'leak'))).length).toBe(2);
  });

  it('samples masked-LM and preference tasks from their families and meta-trains on them (finite, normalized meta-losses)', async () => {
    const saved = process.env['LOPT_CACHE_DIR'];
    process.env['LOPT_CACHE_DIR'] = join(dir, 'cache'); // the preference reference is fitted once, here
    try {
      const estimator = { type: 'truncated-pes', particles: 2, particlesPerUnit: 2, truncationLength: 4, episodeLength: { min: 8, max: 12 }, initialOffset: 4 };
      const r = recipe({
        learnedOptimizer: { arch: 'small_fc_lopt', config: {} },
        estimators: [
          { ...estimator, family: { type: 'mlm', widths: [8], headWidth: 4, seqLens: [8], batchSize: { min: 4, max: 8 }, positions: ['nezha', 'abs'] } },
          { ...estimator, family: { type: 'preference', widths: [8], seqLens: [8], batchSize: { min: 2, max: 4 } } },
        ],
        outerSteps: 2,
      });
      const { events } = await train(join(dir, 'seed-families'), r);
      const start = events.find((e) => e.type === 'run-start');
      expect(start?.type === 'run-start' && start.estimators.join(' ')).toMatch(/mlm-mobydick-.*pref-mobydick-/);
      const steps = events.filter((e) => e.type === 'outer-step');
      expect(steps).toHaveLength(2);
      for (const e of steps) {
        expect(Number.isFinite(e.metaLoss) && e.metaLoss > 0, `meta-loss ${e.metaLoss}`).toBe(true);
        expect(e.innerLoss.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
        expect(e.metaGradNorm).toBeGreaterThan(0);
      }
    } finally {
      if (saved === undefined) delete process.env['LOPT_CACHE_DIR'];
      else process.env['LOPT_CACHE_DIR'] = saved;
    }
  });
});

/** A recipe as plain JSON, edited at arbitrary depths by the refusal tests. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Recipeish = Record<string, any>;

describe('recipes', () => {
  const base = () =>
    JSON.parse(
      JSON.stringify({
        learnedOptimizer: { arch: 'mlp_lopt' },
        estimators: [{ type: 'truncated-pes', family: { type: 'fixed', task: 'quadratic-d4-k10' }, particles: 4 }],
        outerSteps: 10,
      }),
    ) as Recipeish;

  it('validates every shipped recipe', async () => {
    for (const name of ['quick', 'mulo-s', 'mulo-m']) {
      const { recipe: r } = await loadRecipe(`meta-train/${name}.json`);
      expect(r.name).toBe(name);
      expect(r.learnedOptimizer.arch).toBe('small_fc_lopt');
    }
    expect((await loadRecipe('meta-train/mulo-m.json')).recipe.estimators.map((e) => (e.family as { widths: number[] }).widths)).toEqual([[32], [64], [128]]);
    await expect(loadRecipe('meta-train/nope.json')).rejects.toThrow(/recipe meta-train\/nope\.json: cannot be read \(ENOENT\)/);
    // A device or a huge file is refused before a byte is read (it used to be read until memory ran out).
    await expect(loadRecipe('/dev/zero')).rejects.toThrow('recipe /dev/zero: not a regular file');
    const big = join(dir, 'big.json');
    await writeFile(big, ' '.repeat((1 << 20) + 1));
    await expect(loadRecipe(big)).rejects.toThrow(`recipe ${big}: 1048577 bytes; a recipe file may hold at most 1048576`);
  });

  it('accepts a minimal recipe and fills the documented defaults', () => {
    const r = parseRecipe(base(), 'r.json');
    expect(r.estimators[0]).toMatchObject({ sigma: 0.01, truncationLength: 50, particlesPerUnit: 4, episodeLength: { min: 100, max: 1000 } });
    expect(r.outer).toEqual({ peakLr: 3e-3, endLr: 1e-3, warmupSteps: 1, weightDecay: 1e-4, clipGlobalNorm: 1 });
  });

  it('names the field path, the bad value and what is allowed', () => {
    const bad = (edit: (r: Recipeish) => void) => {
      const r = base();
      edit(r);
      return () => parseRecipe(r, 'r.json');
    };
    expect(bad((r) => (r.extra = 1))).toThrow(/recipe r\.json: \(root\): .*'extra'/);
    expect(bad((r) => (r.estimators[0].sigma = -1))).toThrow(/estimators\.0\.sigma: must be a finite number > 0; found -1/);
    expect(bad((r) => (r.estimators[0].particles = 'many'))).toThrow(/estimators\.0\.particles: must be an integer in \[1, 4096\]; found "many"/);
    expect(bad((r) => (r.estimators[0].type = 'reinforce'))).toThrow(/estimators\.0\.type: .*found "reinforce"/);
    expect(bad((r) => (r.learnedOptimizer.arch = 'hyper_lstm'))).toThrow(/learnedOptimizer\.arch: .*small_fc_lopt.*velo.*found "hyper_lstm"/);
    expect(bad((r) => (r.learnedOptimizer.config = { hiddenSize: -3 }))).toThrow(
      /learnedOptimizer\.config: mlp_lopt: config 'hiddenSize' must be an integer in \[1, 4096\]; got -3/,
    );
    expect(bad((r) => (r.estimators[0].family = { type: 'fixed', task: 'mlp-nope' }))).toThrow(/estimators\.0\.family: /);
    expect(bad((r) => (r.estimators[0].particlesPerUnit = 8))).toThrow(/particlesPerUnit: must not exceed particles \(4\); found 8/);
    expect(bad((r) => (r.estimators[0].episodeLength = { min: 10, max: 5 }))).toThrow(/estimators\.0\.episodeLength/);
    expect(bad((r) => (r.outer = { warmupSteps: 20 }))).toThrow(/outer\.warmupSteps: must not exceed outerSteps \(10\); found 20/);
  });
});
