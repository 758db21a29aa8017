// Seeded, population-batched streams over the datasets. Member i of a stream draws from its own
// stream seeded by seeds[i], so equal seeds give identical data (antithetic ES pairs) and member i
// of a P-member stream equals the one-member stream of seeds[i]. Each batch is built in typed
// arrays and becomes one tensor per key.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/random/rng.js';
import { SPLITS, type BatchStream, type Split } from '../types.js';
import type { TabularDataset } from './iris.js';
import type { ImageDataset } from './images.js';
import type { TextDataset } from './text.js';

/** Image batches: x [P, B, size·size] float32, y [P, B] int32. */
export function imageBatches(ds: ImageDataset, split: Split, seeds: readonly number[], batchSize: number): BatchStream {
  return exampleBatches(`imageBatches(${ds.name} ${ds.size}×${ds.size})`, ds.images, ds.size * ds.size, ds.labels, ds.splits, split, seeds, batchSize);
}

/** Tabular batches: x [P, B, F] float32, y [P, B] int32. */
export function tabularBatches(ds: TabularDataset, split: Split, seeds: readonly number[], batchSize: number): BatchStream {
  return exampleBatches(`tabularBatches(${ds.name})`, ds.features, ds.numFeatures, ds.labels, ds.splits, split, seeds, batchSize);
}

/**
 * Next-character batches: x [P, B, T] int32 are B windows of seqLen characters starting at uniform
 * random positions inside the split, y [P, B, T] int32 the same windows shifted by one character.
 */
export function textBatches(ds: TextDataset, split: Split, seeds: readonly number[], batchSize: number, seqLen: number): BatchStream {
  const what = `textBatches(${ds.name}, '${split}')`;
  checkCommon(what, split, seeds, batchSize);
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new Error(`${what}: seqLen ${seqLen} must be a positive integer`);
  const { start, end } = ds.splits[split];
  const starts = end - start - seqLen; // window starts available: a window needs seqLen + 1 characters
  if (starts < 1) {
    throw new Error(`${what}: seqLen ${seqLen} needs ${seqLen + 1} characters but the split holds ${end - start}; ` + `valid seqLen: 1..${end - start - 1}`);
  }
  const P = seeds.length;
  const T = seqLen;
  const rngs = seeds.map((s) => Rng.from(s).fork(split));
  return {
    next() {
      const x = new Int32Array(P * batchSize * T);
      const y = new Int32Array(P * batchSize * T);
      for (let p = 0; p < P; p++) {
        const rng = rngs[p]!;
        for (let b = 0; b < batchSize; b++) {
          const s = start + rng.int(starts);
          const off = (p * batchSize + b) * T;
          x.set(ds.codes.subarray(s, s + T), off);
          y.set(ds.codes.subarray(s + 1, s + T + 1), off);
        }
      }
      return { x: tf.tensor3d(x, [P, batchSize, T], 'int32'), y: tf.tensor3d(y, [P, batchSize, T], 'int32') };
    },
  };
}

/**
 * Batches of (row, label) examples. Each member walks its own permutation of the split's indices,
 * reshuffled (continuing the member's Rng) whenever fewer than batchSize remain; the remainder is
 * skipped, so a batch never holds an example twice. On an evaluation split, batchSize is capped at
 * the split's size.
 */
function exampleBatches(
  what: string,
  rows: Float32Array,
  dim: number,
  labels: Int32Array,
  splits: Record<Split, Int32Array>,
  split: Split,
  seeds: readonly number[],
  batchSize: number,
): BatchStream {
  const label = `${what}, '${split}'`;
  checkCommon(label, split, seeds, batchSize);
  const indices = splits[split];
  // The evaluation splits are a tenth of the data: there a batch larger than the split (b8192
  // against 6,000 inner-valid examples) is the whole split. Training batches are never cut.
  if (split !== 'train') batchSize = Math.min(batchSize, indices.length);
  if (batchSize > indices.length) {
    throw new Error(`${label}: batchSize ${batchSize} is larger than the split's ${indices.length} examples; valid: 1..${indices.length}`);
  }
  const P = seeds.length;
  // Members with equal seeds walk the same permutation: one walker per distinct seed, and a
  // member whose seed came earlier copies that member's rows (antithetic pairs share their data).
  const walkers = new Map<number, { rng: Rng; order: Int32Array; pos: number; first: number }>();
  const firstOf = seeds.map((s, p) => {
    let w = walkers.get(s);
    if (w === undefined) {
      w = { rng: Rng.from(s).fork(split), order: indices.slice(), pos: indices.length, first: p };
      walkers.set(s, w);
    }
    return w.first;
  });
  const walkerOf = seeds.map((s) => walkers.get(s)!);
  const rowsPerMember = batchSize * dim;
  return {
    next() {
      const x = new Float32Array(P * rowsPerMember);
      const y = new Int32Array(P * batchSize);
      for (let p = 0; p < P; p++) {
        if (firstOf[p] !== p) {
          const q = firstOf[p]!;
          x.copyWithin(p * rowsPerMember, q * rowsPerMember, (q + 1) * rowsPerMember);
          y.copyWithin(p * batchSize, q * batchSize, (q + 1) * batchSize);
          continue;
        }
        const m = walkerOf[p]!;
        if (m.pos + batchSize > m.order.length) {
          m.rng.shuffle(m.order);
          m.pos = 0;
        }
        for (let b = 0; b < batchSize; b++) {
          const i = m.order[m.pos++]!;
          const k = p * batchSize + b;
          x.set(rows.subarray(i * dim, (i + 1) * dim), k * dim);
          y[k] = labels[i]!;
        }
      }
      return { x: tf.tensor3d(x, [P, batchSize, dim], 'float32'), y: tf.tensor2d(y, [P, batchSize], 'int32') };
    },
  };
}

/** Throws, prefixed by `what`, unless split is known, seeds is a non-empty list of finite numbers and batchSize a positive integer. */
export function checkCommon(what: string, split: Split, seeds: readonly number[], batchSize: number): void {
  if (!SPLITS.includes(split)) throw new Error(`${what}: unknown split '${String(split)}'; valid: ${SPLITS.join(', ')}`);
  if (!Array.isArray(seeds) || seeds.length === 0) {
    throw new Error(`${what}: seeds is empty; give one seed per population member (P = seeds.length ≥ 1)`);
  }
  const bad = seeds.findIndex((s) => typeof s !== 'number' || !Number.isFinite(s));
  if (bad >= 0) throw new Error(`${what}: seeds[${bad}] = ${String(seeds[bad])} is not a finite number`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new Error(`${what}: batchSize ${batchSize} must be a positive integer`);
  }
}
