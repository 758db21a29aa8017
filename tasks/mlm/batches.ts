// The masked-LM batch stream: windows of a text split, corrupted by BERT's whole-word masking.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/random/rng.js';
import { checkCommon } from '../data/batches.js';
import type { TextDataset } from '../data/text.js';
import type { BatchStream, Split } from '../types.js';
import { charKinds, maskWholeWords } from './masking.js';

/**
 * Masked-LM batches, all [P, B, T]: x int32 the corrupted input ids ([MASK] = ds.vocabSize),
 * y int32 the original characters, w float32 1 at the positions to predict, else 0. Each window
 * starts at a uniform random position inside the split (as textBatches, but needing T characters,
 * not T + 1). Member i draws windows and masks from Rng.from(seeds[i]).fork(split) alone, so a
 * P-member stream equals P one-member streams and equal seeds see equal data.
 */
export function maskedTextBatches(ds: TextDataset, split: Split, seeds: readonly number[], batchSize: number, seqLen: number): BatchStream {
  const what = `maskedTextBatches(${ds.name}, '${split}')`;
  checkCommon(what, split, seeds, batchSize);
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new Error(`${what}: seqLen ${seqLen} must be a positive integer`);
  const { start, end } = ds.splits[split];
  const starts = end - start - seqLen + 1;
  if (starts < 1) throw new Error(`${what}: seqLen ${seqLen} is longer than the split's ${end - start} characters; valid seqLen: 1..${end - start}`);
  const kinds = charKinds(ds.vocab);
  const [P, B, T, V] = [seeds.length, batchSize, seqLen, ds.vocabSize];
  const rngs = seeds.map((s) => Rng.from(s).fork(split));
  return {
    next() {
      const x = new Int32Array(P * B * T);
      const y = new Int32Array(P * B * T);
      const w = new Float32Array(P * B * T);
      for (let p = 0; p < P; p++) {
        const rng = rngs[p]!;
        for (let b = 0; b < B; b++) {
          const s = start + rng.int(starts);
          const window = ds.codes.subarray(s, s + T);
          const { input, weight } = maskWholeWords(window, kinds, V, rng);
          const off = (p * B + b) * T;
          x.set(input, off);
          y.set(window, off);
          w.set(weight, off);
        }
      }
      return { x: tf.tensor3d(x, [P, B, T], 'int32'), y: tf.tensor3d(y, [P, B, T], 'int32'), w: tf.tensor3d(w, [P, B, T], 'float32') };
    },
  };
}
