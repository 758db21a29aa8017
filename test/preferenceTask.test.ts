import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { muadam } from '../src/optim/baselines/adam.js';
import { Rng } from '../src/random/rng.js';
import type { Params } from '../src/tree/params.js';
import { disposeState } from '../src/tree/stateTree.js';
import { loadText } from '../tasks/data/text.js';
import { lossAndGrads } from '../tasks/lossAndGrads.js';
import { headsFor, modelConfigOf, type PreferenceLoss } from '../tasks/preference/config.js';
import { DPO_BETA, MIPO_BETA, SIMPO_BETA, SIMPO_GAMMA_BETA_RATIO, pairObjective } from '../tasks/preference/losses.js';
import { drawPair, maxResponseLength, pairBatches, promptLength } from '../tasks/preference/pairs.js';
import {
  LOSS_CAP,
  PREF_NAME_FORM,
  parsePreferenceName,
  preferenceName,
  preferenceTask,
  validatePreferenceConfig,
  type PreferenceConfig,
} from '../tasks/preference/preferenceTask.js';
import { forgetReferences, referenceCacheDir, referenceKey, referenceModel, type SftSettings } from '../tasks/preference/reference.js';
import { encodeReferenceFile } from '../tasks/preference/referenceFile.js';
import { taskFromName } from '../tasks/registry.js';
import { causalLogits } from '../tasks/transformer.js';
import type { Batch, Split, Task } from '../tasks/types.js';
import { populationVsSingles, trainWithAdam } from './helpers/taskChecks.js';

const text = loadText('moby-dick');
const V = text.vocabSize;
let cacheRoot = '';
const savedCacheDir = process.env['LOPT_CACHE_DIR'];

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  // Every reference of this file is trained into (and read from) a fresh folder.
  cacheRoot = mkdtempSync(join(tmpdir(), 'lopt-pref-'));
  process.env['LOPT_CACHE_DIR'] = cacheRoot;
});

afterAll(() => {
  forgetReferences();
  if (savedCacheDir === undefined) delete process.env['LOPT_CACHE_DIR'];
  else process.env['LOPT_CACHE_DIR'] = savedCacheDir;
  rmSync(cacheRoot, { recursive: true, force: true });
});

const tiny = (o: Partial<PreferenceConfig> = {}): PreferenceConfig => ({
  loss: 'dpo',
  width: 8,
  depth: 1,
  seqLen: 16,
  batchSize: 4,
  parametrization: 'mup',
  ...o,
});
/** A cheap SFT for tests (the pinned recipe takes ~300 steps of 32 windows). */
const sftFor = (c: PreferenceConfig, steps = 40): SftSettings => ({ steps, batchSize: 16, learningRate: c.parametrization === 'mup' ? 0.2 : 0.03 });
const taskOf = (c: PreferenceConfig, steps = 40): Task => preferenceTask(c, { sft: sftFor(c, steps) });

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const disposeBatch = (b: Batch) => tf.dispose(Object.values(b));

/** Stable float64 softplus: log(1 + e^x). */
const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/**
 * The three objectives in float64, written out from the papers with the official defaults:
 * DPO β = 0.1; SimPO β = 2, γ = 0.25·β; MIPO β = 20.
 */
function float64Objective(kind: PreferenceLoss, sw: number, sl: number, rw: number, rl: number, nw: number, nl: number): { loss: number; margin: number } {
  if (kind === 'dpo') {
    const z = 0.1 * (sw - rw - (sl - rl));
    return { loss: softplus(-z), margin: z };
  }
  const gap = sw / nw - sl / nl;
  if (kind === 'simpo') return { loss: softplus(-(2 * gap - 0.5)), margin: 2 * gap };
  const K = rw / nw - rl / nl;
  return { loss: softplus(-20 * (gap - softplus(K))), margin: 20 * gap };
}

/** Per pair (S_θ(w), S_θ(l), S_ref(w), S_ref(l), |w|, |l|), float32-exact so the f64 formula sees the same inputs. */
function randomPairs(n: number): number[][] {
  const rng = Rng.from('pref-loss-values');
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    // A quarter of the rows far out (|margins| of hundreds to thousands), the rest typical.
    const spread = i % 4 === 0 ? 3000 : 40;
    const len = () => 1 + rng.int(17);
    rows.push([-rng.uniform(0, spread), -rng.uniform(0, spread), -rng.uniform(0, spread), -rng.uniform(0, spread), len(), len()].map(Math.fround));
  }
  // Exact ties (z = 0) and one-sided extremes.
  rows.push([-5, -5, -5, -5, 3, 3], [-1, -3000, -3000, -1, 1, 1], [-3000, -1, -1, -3000, 1, 1]);
  return rows;
}

describe('losses', () => {
  it('the pinned hyperparameters are the official defaults', () => {
    expect([DPO_BETA, SIMPO_BETA, SIMPO_GAMMA_BETA_RATIO, MIPO_BETA]).toEqual([0.1, 2, 0.25, 20]);
  });

  it.each(['dpo', 'simpo', 'mipo'] as const)('%s: loss and margin equal the float64 formula, finite at large |margins|', (kind) => {
    const rows = randomPairs(200);
    const col = (j: number) => tf.tensor1d(rows.map((r) => r[j]!));
    const inputs = { policyChosen: col(0), policyRejected: col(1), refChosen: col(2), refRejected: col(3), lenChosen: col(4), lenRejected: col(5) };
    const { loss, margin } = pairObjective(kind, inputs);
    const [gotLoss, gotMargin] = [values(loss), values(margin)];
    rows.forEach((r, i) => {
      const want = float64Objective(kind, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!);
      // float32 arithmetic on inputs of magnitude up to β·3000: allow its rounding, no more.
      const beta = kind === 'dpo' ? DPO_BETA : kind === 'simpo' ? SIMPO_BETA : MIPO_BETA;
      const scale = beta * r.slice(0, 4).reduce((s, v) => s + Math.abs(v), 0);
      const tol = 1e-6 * (1 + scale);
      expect(Number.isFinite(gotLoss[i]!)).toBe(true);
      expect(Math.abs(gotLoss[i]! - want.loss)).toBeLessThanOrEqual(tol + 1e-6 * Math.abs(want.loss));
      expect(Math.abs(gotMargin[i]! - want.margin)).toBeLessThanOrEqual(tol);
    });
    // The extremes are really exercised: some losses ≈ 0 and some in the hundreds.
    expect(Math.max(...gotLoss)).toBeGreaterThan(100);
    expect(Math.min(...gotLoss)).toBeLessThan(1e-3);
    tf.dispose([Object.values(inputs), loss, margin]);
  });

  it('S is the float64 sum of log-softmax over the response targets of the task’s logits; the task loss follows from it', () => {
    const cfg = tiny({ loss: 'simpo', seqLen: 12, batchSize: 6 });
    const model = modelConfigOf(cfg);
    const T = cfg.seqLen;
    const B = cfg.batchSize;
    const params = taskOf(cfg).init([1]);
    const rows = (k: string, batch: Batch) => batch[k]!.dataSync();
    /** Float64 S of every row of x/y/m [1, B, T] from the model's float32 logits. */
    const f64Sums = (batch: Batch, x: string, y: string, m: string): number[] => {
      const logits = causalLogits(model, V, params, batch[x]!);
      const L = logits.dataSync();
      logits.dispose();
      const [ys, ms] = [rows(y, batch), rows(m, batch)];
      return Array.from({ length: B }, (_, b) => {
        let s = 0;
        for (let j = 0; j < T; j++) {
          if (ms[b * T + j] === 0) continue;
          const off = (b * T + j) * V;
          let max = -Infinity;
          for (let v = 0; v < V; v++) max = Math.max(max, L[off + v]!);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(L[off + v]! - max);
          s += L[off + ys[b * T + j]!]! - max - Math.log(z);
        }
        return s;
      });
    };
    const lengths = (m: string, batch: Batch) =>
      Array.from({ length: B }, (_, b) => Array.from(rows(m, batch).slice(b * T, (b + 1) * T)).reduce((a, v) => a + v, 0));
    for (const kind of ['dpo', 'simpo', 'mipo'] as const) {
      const task = taskOf({ ...cfg, loss: kind });
      const batch = task.batches('train', [4]).next();
      const [sw, sl] = [f64Sums(batch, 'xw', 'yw', 'mw'), f64Sums(batch, 'xl', 'yl', 'ml')];
      // The policy starts at the reference, so the batch's reference S equals S of the init params.
      values(batch['refw']!).forEach((v, b) => expect(v).toBeCloseTo(sw[b]!, 3));
      values(batch['refl']!).forEach((v, b) => expect(v).toBeCloseTo(sl[b]!, 3));
      const [nw, nl] = [lengths('mw', batch), lengths('ml', batch)];
      const want = sw.map((_, b) => float64Objective(kind, sw[b]!, sl[b]!, sw[b]!, sl[b]!, nw[b]!, nl[b]!));
      const loss = task.loss(params, batch);
      const metrics = task.metrics!(params, batch);
      expect(values(loss)[0]).toBeCloseTo(want.reduce((a, w) => a + w.loss, 0) / B, 4);
      expect(values(metrics['rewardMargin']!)[0]).toBeCloseTo(want.reduce((a, w) => a + w.margin, 0) / B, 4);
      tf.dispose([loss, Object.values(metrics)]);
      disposeBatch(batch);
    }
    tf.dispose(Object.values(params));
  });

  it('normalizeLoss clips to [0, cap], non-finite → cap', () => {
    for (const kind of ['dpo', 'simpo', 'mipo'] as const) {
      const cap = LOSS_CAP[kind];
      const l = tf.tensor1d([Number.NaN, Infinity, -Infinity, -1, 0.5, 1e6]);
      const n = taskOf(tiny({ loss: kind })).normalizeLoss(l);
      values(n).forEach((v, i) => expect(v).toBeCloseTo([cap, cap, cap, 0, 0.5, cap][i]!, 5));
      tf.dispose([l, n]);
    }
    expect(LOSS_CAP.dpo).toBeGreaterThan(2 * Math.LN2);
  });
});

describe('pairs', () => {
  const T = 24;
  const Lp = promptLength(T);
  const maxLen = maxResponseLength(T);
  const space = (code: number) => /^\s$/u.test(text.vocab[code]!);
  const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => v === b[i]);

  it('chosen is the true continuation cut at a word end; rejected differs; kinds and lengths vary; splits stay apart', () => {
    expect([Lp, maxLen]).toEqual([12, 13]);
    for (const split of ['train', 'inner-valid', 'outer-valid', 'test'] as const) {
      const { start, end } = text.splits[split];
      const rng = Rng.from(`pairs/${split}`);
      const kinds = { shuffled: 0, elsewhere: 0 };
      let lengthsDiffer = 0;
      for (let i = 0; i < 300; i++) {
        const p = drawPair(text, split, T, rng);
        expect(p.start).toBeGreaterThanOrEqual(start);
        expect(p.start + Lp + maxLen).toBeLessThan(end);
        expect(same(p.prompt, text.codes.subarray(p.start, p.start + Lp))).toBe(true);
        const n = p.chosen.length;
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(maxLen);
        expect(same(p.chosen, text.codes.subarray(p.start + Lp, p.start + Lp + n))).toBe(true);
        // Cut at the last word end: the next character is whitespace, or no word ends in the window.
        const window = text.codes.subarray(p.start + Lp + 1, p.start + Lp + maxLen + 1);
        expect(space(text.codes[p.start + Lp + n]!) || (n === maxLen && !Array.from(window).some(space))).toBe(true);
        expect(same(p.rejected, p.chosen)).toBe(false);
        kinds[p.rejectedKind]++;
        if (p.rejectedKind === 'shuffled') {
          // The same characters in another word order.
          expect([...p.rejected].sort((a, b) => a - b)).toEqual([...p.chosen].sort((a, b) => a - b));
          expect(p.rejectedStart).toBe(-1);
        } else {
          expect(p.rejectedStart).toBeGreaterThanOrEqual(start);
          expect(p.rejectedStart + maxLen).toBeLessThan(end);
          expect(same(p.rejected, text.codes.subarray(p.rejectedStart, p.rejectedStart + p.rejected.length))).toBe(true);
        }
        if (p.rejected.length !== n) lengthsDiffer++;
      }
      expect(kinds.shuffled).toBeGreaterThan(60);
      expect(kinds.elsewhere).toBeGreaterThan(60);
      expect(lengthsDiffer).toBeGreaterThan(60);
    }
  });

  it('batches encode prompt + response with masks on exactly the response targets; seeded, and P members = P singles', () => {
    const B = 5;
    const seeds = [7, 3, 7];
    const a = pairBatches(text, 'test', seeds, B, T).next();
    // Member p's pairs are drawPair's from Rng.from(seed).fork(split), in order.
    seeds.forEach((seed, p) => {
      const rng = Rng.from(seed).fork('test');
      for (let b = 0; b < B; b++) {
        const pair = drawPair(text, 'test', T, rng);
        const off = (p * B + b) * T;
        for (const [x, y, m, response] of [
          [a.xw, a.yw, a.mw, pair.chosen],
          [a.xl, a.yl, a.ml, pair.rejected],
        ] as const) {
          const seq = Array.from(x.subarray(off, off + T)).concat([y[off + T - 1]!]);
          expect(same(seq.slice(0, Lp), pair.prompt)).toBe(true);
          expect(same(seq.slice(Lp, Lp + response.length), response)).toBe(true);
          expect(same(x.subarray(off + 1, off + T), y.subarray(off, off + T - 1))).toBe(true);
          const mask = Array.from(m.subarray(off, off + T));
          expect(mask).toEqual(mask.map((_, j) => (j >= Lp - 1 && j < Lp - 1 + response.length ? 1 : 0)));
        }
      }
    });
    // Equal seeds, equal data; the one-member stream is member 1; another seed differs.
    expect(same(a.xw.subarray(0, B * T), a.xw.subarray(2 * B * T))).toBe(true);
    const single = pairBatches(text, 'test', [3], B, T).next();
    for (const k of ['xw', 'yw', 'mw', 'xl', 'yl', 'ml'] as const) expect(same(single[k], a[k].subarray(B * T, 2 * B * T))).toBe(true);
    expect(same(a.xw.subarray(0, B * T), a.xw.subarray(B * T, 2 * B * T))).toBe(false);
    // The split is part of the stream: another split, other pairs.
    expect(same(pairBatches(text, 'train', [3], B, T).next().xw, single.xw)).toBe(false);
  });

  it('task batches: keys and shapes, reference S per pair, deterministic per seed', () => {
    const cfg = tiny({ batchSize: 3 });
    const task = taskOf(cfg);
    const [b1, b2] = [task.batches('inner-valid', [2, 9]).next(), task.batches('inner-valid', [2, 9]).next()];
    expect(Object.keys(b1).sort()).toEqual(['ml', 'mw', 'refl', 'refw', 'xl', 'xw', 'yl', 'yw']);
    expect(b1['xw']!.shape).toEqual([2, 3, 16]);
    expect([b1['xw']!.dtype, b1['mw']!.dtype, b1['refw']!.dtype]).toEqual(['int32', 'float32', 'float32']);
    expect(b1['refl']!.shape).toEqual([2, 3]);
    for (const k of Object.keys(b1)) expect(values(b2[k]!)).toEqual(values(b1[k]!));
    expect(values(b1['refw']!).every((v) => Number.isFinite(v) && v < 0)).toBe(true);
    disposeBatch(b1);
    disposeBatch(b2);
  });
});

describe('reference model cache', () => {
  const cfg = tiny({ width: 8, seqLen: 16 });
  const sft = sftFor(cfg, 30);
  const bytesOf = (p: Params) => Object.values(p).map((t) => Buffer.from((t.dataSync() as Float32Array).buffer).toString('base64'));

  it('trains once, then loads the same bytes from disk, then from memory', () => {
    const t0 = performance.now();
    const first = referenceModel(cfg, 5, sft);
    const trainMs = performance.now() - t0;
    expect(first.source).toBe('trained');
    expect(first.file.startsWith(join(cacheRoot, 'references'))).toBe(true);
    expect(existsSync(first.file)).toBe(true);
    expect(first.sftLoss!).toBeLessThan(Math.log(V));
    const want = bytesOf(first.params);
    forgetReferences();
    const t1 = performance.now();
    const second = referenceModel(cfg, 5, sft);
    const loadMs = performance.now() - t1;
    expect(second.source).toBe('disk');
    expect(bytesOf(second.params)).toEqual(want);
    expect(loadMs).toBeLessThan(trainMs / 2);
    expect(second.params['embed/tokens']!.shape).toEqual([1, V, 8]);
    const third = referenceModel(cfg, 5, sft);
    expect(third.source).toBe('memory');
    expect(third.params).toBe(second.params);
  });

  it('a corrupted, truncated, oversized, foreign or non-finite cache file is ignored and re-trained, never trusted', () => {
    const good = referenceModel(cfg, 6, sft);
    const file = good.file;
    const want = bytesOf(good.params);
    const original = readFileSync(file);
    const other = referenceModel(cfg, 7, sft);
    const shapes = Object.entries(good.params).map(([name, t]) => ({ name, shape: t.shape.slice(1) }));
    const flipped = Buffer.from(original);
    flipped[flipped.length - 3]! ^= 0x40;
    const nonFinite = encodeReferenceFile(
      good.key,
      shapes.map((s, i) => ({ ...s, values: new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(i === 0 ? Number.NaN : 0) })),
    );
    const cases: [string, Buffer, RegExp][] = [
      ['payload bit flip', flipped, /sha256/],
      ['truncated', original.subarray(0, original.length - 100), /payload is/],
      ['garbage', Buffer.from('not a reference at all'), /magic/],
      ['oversized', Buffer.concat([original, Buffer.alloc(1 << 17)]), /larger/],
      ['another reference', readFileSync(other.file), /key differs/],
      ['non-finite values with a valid digest', nonFinite, /non-finite/],
    ];
    for (const [what, bytes, reason] of cases) {
      writeFileSync(file, bytes);
      forgetReferences();
      const again = referenceModel(cfg, 6, sft);
      expect(again.source, what).toBe('trained');
      expect(again.ignored, what).toMatch(reason);
      // Training is deterministic: the re-trained weights are the original ones, and the file is whole again.
      expect(bytesOf(again.params), what).toEqual(want);
      expect(readFileSync(file).equals(original), what).toBe(true);
    }
  });

  it('a reference made inside a caller’s tf.tidy survives it; bad requests are refused', () => {
    const small = sftFor(cfg, 3);
    tf.tidy(() => {
      referenceModel(cfg, 9, small);
    });
    const r = referenceModel(cfg, 9, small);
    expect(r.source).toBe('memory');
    expect(Object.values(r.params).some((t) => t.isDisposed)).toBe(false);
    expect(() => referenceModel(cfg, 0.5, small)).toThrow('preference reference: seed must be an integer; got 0.5');
    expect(() => referenceModel(cfg, 0, { ...small, steps: 0 })).toThrow('SFT steps must be a positive integer; got 0');
    expect(() => referenceModel(cfg, 0, { ...small, learningRate: Number.NaN })).toThrow('SFT learningRate must be positive; got NaN');
  });

  it('an unwritable cache folder is no error', () => {
    const blocker = join(cacheRoot, 'a-file');
    writeFileSync(blocker, 'x');
    process.env['LOPT_CACHE_DIR'] = blocker;
    try {
      const r = referenceModel(cfg, 8, sftFor(cfg, 5));
      expect(r.source).toBe('trained');
      expect(existsSync(r.file)).toBe(false);
    } finally {
      process.env['LOPT_CACHE_DIR'] = cacheRoot;
    }
  });

  it('the key covers every field that determines the weights, and only those', () => {
    const base = referenceKey(cfg, 0, sft);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    const changed = [
      referenceKey({ ...cfg, width: 16 }, 0, sft),
      referenceKey({ ...cfg, depth: 2 }, 0, sft),
      referenceKey({ ...cfg, seqLen: 20 }, 0, sft),
      referenceKey({ ...cfg, parametrization: 'sp' }, 0, sft),
      referenceKey(cfg, 1, sft),
      referenceKey(cfg, 0, { ...sft, steps: 31 }),
      referenceKey(cfg, 0, { ...sft, batchSize: 8 }),
      referenceKey(cfg, 0, { ...sft, learningRate: 0.1 }),
    ];
    expect(new Set([base, ...changed]).size).toBe(changed.length + 1);
    // The preference loss and batch do not change the SFT model: the three losses share it.
    expect(referenceKey({ ...cfg, loss: 'mipo', batchSize: 64 }, 0, sft)).toBe(base);
    expect(referenceCacheDir({ LOPT_CACHE_DIR: '/c' })).toBe('/c/references');
    expect(referenceCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/lopt/references');
    expect(referenceCacheDir({})).toBe(join(homedir(), '.cache', 'lopt', 'references'));
  });
});

describe('population axis', () => {
  it.each([
    ['dpo', 'mup'],
    ['simpo', 'mup'],
    ['mipo', 'mup'],
    ['dpo', 'sp'],
    ['simpo', 'sp'],
    ['mipo', 'sp'],
  ] as const)('%s (%s): P=3 batched loss and gradients equal the singles; init is the reference', (loss, parametrization) => {
    const cfg = tiny({ loss, parametrization, width: 16, seqLen: 12 });
    const task = taskOf(cfg);
    expect(populationVsSingles(task, [1, 2, 1])).toBeLessThanOrEqual(1e-4);
    const p = task.init([1, 2]);
    const ref = referenceModel(cfg, 0, sftFor(cfg)).params;
    for (const [name, t] of Object.entries(p)) {
      const r = values(ref[name]!);
      expect(values(t)).toEqual([...r, ...r]);
    }
    tf.dispose(Object.values(p));
  });
});

describe('training', () => {
  const trainingConfig = (loss: PreferenceLoss): PreferenceConfig => ({ loss, width: 32, depth: 1, seqLen: 16, batchSize: 16, parametrization: 'mup' });

  it('the reference reads its context: the SFT loss ends below the corpus unigram entropy', () => {
    const counts = new Float64Array(V);
    const { start, end } = text.splits.train;
    for (let i = start; i < end; i++) counts[text.codes[i]!]!++;
    const unigram = -Array.from(counts).reduce((h, c) => (c === 0 ? h : h + (c / (end - start)) * Math.log(c / (end - start))), 0);
    const cfg = trainingConfig('dpo');
    const ref = referenceModel(cfg, 0, sftFor(cfg, 100));
    expect(ref.source).toBe('trained');
    // A model blind to its tokens (as with tfjs-wasm's float32 OneHot, which wrote 1.4e-45) stops at the unigram entropy, ~3.07.
    expect(ref.sftLoss!).toBeLessThan(unigram - 0.3);
    // And the logits at position 0 depend on the token there.
    const x = tf.tensor3d(
      [
        [
          [5, 0, 0, 0],
          [9, 0, 0, 0],
        ],
      ],
      [1, 2, 4],
      'int32',
    );
    const logits = causalLogits(modelConfigOf(cfg), V, ref.params, x);
    const [a, b] = [values(logits).slice(0, V), values(logits).slice(4 * V, 5 * V)];
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(0.1);
    tf.dispose([x, logits]);
  });

  it('no tensor growth over 1,000 training steps (loss, accuracy, metrics, normalizeLoss too)', async () => {
    const task = taskOf(tiny({ width: 8, seqLen: 12, batchSize: 2 }));
    tf.dispose(Object.values(task.init([1]))); // the reference is trained and held before counting
    const before = tf.memory().numTensors;
    await trainWithAdam(task, 1000, 1e-3, 1, true);
    const params = task.init([1, 2]);
    const batch = task.batches('test', [1, 2]).next();
    const loss = task.loss(params, batch);
    const made: tf.Tensor[] = [loss, task.accuracy!(params, batch), ...Object.values(task.metrics!(params, batch)), task.normalizeLoss(loss)];
    tf.dispose([made, Object.values(params)]);
    disposeBatch(batch);
    expect(tf.memory().numTensors).toBe(before);
  });

  /** Mean loss and preference accuracy of one member over fixed test batches. */
  function heldOut(task: Task, params: Params, split: Split = 'test', n = 8): { loss: number; accuracy: number } {
    const stream = task.batches(split, [1234]);
    let [loss, accuracy] = [0, 0];
    for (let i = 0; i < n; i++) {
      const batch = stream.next();
      const l = task.loss(params, batch);
      const m = task.metrics!(params, batch);
      loss += values(l)[0]! / n;
      accuracy += values(m['preferenceAccuracy']!)[0]! / n;
      const a = task.accuracy!(params, batch);
      expect(values(a)).toEqual(values(m['preferenceAccuracy']!));
      tf.dispose([l, a, Object.values(m)]);
      disposeBatch(batch);
    }
    return { loss, accuracy };
  }

  it.each(['dpo', 'simpo', 'mipo'] as const)(
    '%s: μAdam (lr 0.03, 300 steps) lowers the held-out loss below 0.8× its start and raises preference accuracy',
    (kind) => {
      const task = taskOf(trainingConfig(kind), 100);
      let params = task.init([1]);
      const start = heldOut(task, params);
      const opt = muadam({ learningRate: 0.03, mupScale: { ...task.mupScale } });
      let state = opt.init(params);
      const stream = task.batches('train', [1]);
      for (let k = 0; k < 300; k++) {
        const batch = stream.next();
        const { losses, grads } = lossAndGrads(task, params, batch);
        ({ params, state } = opt.step(params, grads, state));
        tf.dispose([losses, Object.values(grads)]);
        disposeBatch(batch);
      }
      const end = heldOut(task, params);
      expect(end.loss).toBeLessThan(0.8 * start.loss);
      expect(end.accuracy).toBeGreaterThan(start.accuracy);
      if (kind === 'dpo') expect(start.loss).toBeCloseTo(Math.LN2, 4); // policy = reference: every margin is 0
      tf.dispose(Object.values(params));
      disposeState(state.inner);
    },
  );
});

describe('names', () => {
  it('canonical names round-trip; heads follow the width; the registry builds the task without training', () => {
    const name = 'pref-mobydick-dpo-w32-d1-t32-b16-mup';
    const c = parsePreferenceName(name);
    expect(c).toEqual({ loss: 'dpo', width: 32, depth: 1, seqLen: 32, batchSize: 16, parametrization: 'mup' });
    expect(preferenceName(c)).toBe(name);
    expect(preferenceName(parsePreferenceName('pref-mobydick-mipo-w24-d2-t64-b8-sp'))).toBe('pref-mobydick-mipo-w24-d2-t64-b8-sp');
    expect([headsFor(32), headsFor(64), headsFor(8), headsFor(24)]).toEqual([2, 4, 1, 1]);
    const task = taskFromName('pref-mobydick-simpo-w48-d3-t40-b8-sp');
    expect(task.meta).toMatchObject({
      name: 'pref-mobydick-simpo-w48-d3-t40-b8-sp',
      family: 'preference',
      dataset: 'moby-dick',
      width: 48,
      depth: 3,
      batchSize: 8,
    });
    const transformer = taskFromName('transformer-mobydick-w48-d3-h3-t40-b8-sp');
    expect(task.meta.paramCount).toBe(transformer.meta.paramCount);
    expect(task.shapes).toEqual(transformer.shapes);
    expect(task.mupScale).toEqual(transformer.mupScale);
    // Building a task (e.g. to validate its name) trains nothing: no reference for this shape exists.
    expect(existsSync(referenceModelFileFor(parsePreferenceName('pref-mobydick-simpo-w48-d3-t40-b8-sp')))).toBe(false);
  });

  it('bad names and configs are refused with the accepted form', () => {
    const form = PREF_NAME_FORM.replace(/[{}|]/g, (ch) => `\\${ch}`);
    for (const bad of ['pref-mobydick-ppo-w32-d1-t32-b16-mup', 'pref-mobydick-dpo-w32-d1-t32-mup', 'pref-mobydick-dpo-w032-d1-t32-b16-mup', 'pref-dpo']) {
      expect(() => taskFromName(bad)).toThrow(new RegExp(`cannot parse name .*; expected ${form}, e\\.g\\. pref-mobydick-dpo-w32-d1-t32-b16-mup`));
    }
    expect(() => parsePreferenceName('pref-mobydick-dpo-w32-d1-t2-b16-mup')).toThrow("preference task: option 'seqLen' must be an integer in [4, 4096]; got 2");
    expect(() => validatePreferenceConfig({ ...tiny(), loss: 'ipo' })).toThrow(
      `preference task: option 'loss' must be one of "dpo", "simpo", "mipo"; got "ipo"`,
    );
    expect(() => preferenceTask({ ...tiny(), heads: 2 } as never)).toThrow(
      /unknown option 'heads'; allowed options: loss, width, depth, seqLen, batchSize, parametrization/,
    );
    expect(() => taskFromName('pref-mobydick-dpo-w32-d1-t32-b16-mup\u001b[2J')).toThrow(/\\u001b/);
  });
});

function referenceModelFileFor(c: PreferenceConfig): string {
  return join(referenceCacheDir(), `${referenceKey(c, 0)}.bin`);
}
