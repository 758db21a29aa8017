// Preference optimization (DPO, SimPO, MIPO) of the causal character transformer on Moby Dick
// pairs: the policy starts at the SFT reference model (tasks/preference/reference.ts) and learns
// to prefer the text's true continuation over a shuffled or misplaced one.
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import { tidyTree } from '../../src/tree/tidy.js';
import { loadText } from '../data/text.js';
import { clippedNormalizer } from '../normalize.js';
import { transformerTask } from '../transformer.js';
import type { Batch, BatchStream, Split, Task } from '../types.js';
import { modelConfigOf, preferenceName, validatePreferenceConfig, type PreferenceConfig, type PreferenceLoss } from './config.js';
import { responseLogProbs } from './logps.js';
import { pairObjective, type PairObjective, type PairScores } from './losses.js';
import { pairBatches } from './pairs.js';
import { defaultSft, referenceModel, type SftSettings } from './reference.js';

export { PREF_NAME_FORM, parsePreferenceName, preferenceName, validatePreferenceConfig, type PreferenceConfig } from './config.js';

/**
 * The task's reference seed: one reference model per task configuration — per model shape, in
 * fact, as the three losses and every batch size share it (referenceModel takes any seed).
 */
export const REFERENCE_SEED = 0;

/**
 * normalizeLoss caps, a few times each loss at the start, measured on w32-d1-t32-b16 at the pinned
 * SFT reference (test pairs, μP and SP alike): DPO starts at exactly ln 2 (policy = reference,
 * every z = 0), cap 3·ln 2; SimPO at ~0.80, cap 3; MIPO at ~12.1 (β = 20 times softplus(−K) where
 * the reference barely prefers yw), cap 30.
 */
export const LOSS_CAP: Readonly<Record<PreferenceLoss, number>> = { dpo: 3 * Math.LN2, simpo: 3, mipo: 30 };

export interface PreferenceTaskOptions {
  /** The reference's SFT recipe (default: the pinned one); tests pass a cheaper one. Not part of the name. */
  sft?: SftSettings;
}

/** Batch keys: [P, B, t] int32 x/y and float32 masks for chosen (w) and rejected (l), and [P, B] reference log-probs. */
const PAIR_KEYS = ['xw', 'yw', 'mw', 'xl', 'yl', 'ml', 'refw', 'refl'] as const;

function need(batch: Batch, key: (typeof PAIR_KEYS)[number]): tf.Tensor {
  const t = batch[key];
  if (t === undefined) throw new Error(`preference task: batch has no '${key}' (expected keys: ${PAIR_KEYS.join(', ')})`);
  return t;
}

export function preferenceTask(config: PreferenceConfig, options: PreferenceTaskOptions = {}): Task {
  const cfg = validatePreferenceConfig(config);
  const text = loadText('moby-dick');
  const V = text.vocabSize;
  const model = modelConfigOf(cfg);
  const { shapes, mupScale } = transformerTask(model);
  const sft = options.sft ?? defaultSft(cfg);
  const { seqLen: T, batchSize: B } = cfg;
  // Looked up on use, not at construction: building a task (to validate a name) never trains.
  const reference = (): Params => referenceModel(cfg, REFERENCE_SEED, sft).params;

  /** S of the chosen and rejected responses under `params` [P, ...]: one forward pass over [P, 2B, t]. */
  const sums = (params: Params, batch: Batch): { chosen: tf.Tensor; rejected: tf.Tensor } =>
    tf.tidy(() => {
      const both = (w: 'xw' | 'yw' | 'mw', l: 'xl' | 'yl' | 'ml') => tf.concat([need(batch, w), need(batch, l)], 1);
      const s = responseLogProbs(model, V, params, both('xw', 'xl'), both('yw', 'yl'), both('mw', 'ml'));
      const P = s.shape[0];
      const n = s.shape[1] / 2;
      return { chosen: tf.slice(s, [0, 0], [P, n]), rejected: tf.slice(s, [0, n], [P, n]) };
    });

  const objective = (params: Params, batch: Batch): PairObjective =>
    tidyTree(() => {
      const s = sums(params, batch);
      const scores: PairScores = {
        policyChosen: s.chosen,
        policyRejected: s.rejected,
        refChosen: need(batch, 'refw'),
        refRejected: need(batch, 'refl'),
        lenChosen: tf.sum(need(batch, 'mw'), -1),
        lenRejected: tf.sum(need(batch, 'ml'), -1),
      };
      return pairObjective(cfg.loss, scores);
    });

  /** Preference accuracy per member: the fraction of pairs whose reward margin is positive. */
  const accuracyOf = (margin: tf.Tensor): tf.Tensor1D => tf.mean(tf.cast(tf.greater(margin, 0), 'float32'), -1) as tf.Tensor1D;

  return {
    meta: {
      name: preferenceName(cfg),
      family: 'preference',
      parametrization: cfg.parametrization,
      dataset: 'moby-dick',
      width: cfg.width,
      depth: cfg.depth,
      batchSize: B,
      paramCount: Object.values(shapes).reduce((n, s) => n + s.reduce((p, k) => p * k, 1), 0),
    },
    shapes,
    mupScale,
    /** Every member starts at the reference (SFT) model, whatever its seed: preference optimization fine-tunes it. */
    init(seeds: readonly number[]): Params {
      if (!Array.isArray(seeds) || seeds.length === 0) throw new Error('preference task: init needs at least one seed');
      const ref = reference();
      const out: Params = {};
      for (const [name, t] of Object.entries(ref)) out[name] = tf.tile(t, [seeds.length, ...t.shape.slice(1).map(() => 1)]);
      return out;
    },
    // Per member: the mean over its B pairs.
    loss(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => tf.mean(objective(params, batch).loss, -1) as tf.Tensor1D);
    },
    accuracy(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => accuracyOf(objective(params, batch).margin));
    },
    metrics(params: Params, batch: Batch): Record<string, tf.Tensor1D> {
      return tf.tidy(() => {
        const { margin } = objective(params, batch);
        return { preferenceAccuracy: accuracyOf(margin), rewardMargin: tf.mean(margin, -1) as tf.Tensor1D };
      });
    },
    /** Pairs of `split`, with the reference's S of both responses computed here (the reference is constant). */
    batches(split: Split, seeds: readonly number[]): BatchStream {
      const pairs = pairBatches(text, split, seeds, B, T);
      const ref = reference();
      const P = seeds.length;
      return {
        next(): Batch {
          const a = pairs.next();
          const ints = (v: Int32Array) => tf.tensor3d(v, [P, B, T], 'int32');
          const floats = (v: Float32Array) => tf.tensor3d(v, [P, B, T], 'float32');
          const batch: Batch = { xw: ints(a.xw), yw: ints(a.yw), mw: floats(a.mw), xl: ints(a.xl), yl: ints(a.yl), ml: floats(a.ml) };
          const [refw, refl] = tf.tidy(() => {
            // All P·2B sequences through the one reference: [1, P·2B, t] → S [P, 2B].
            const flat = (w: 'xw' | 'yw' | 'mw', l: 'xl' | 'yl' | 'ml') => tf.reshape(tf.concat([batch[w]!, batch[l]!], 1), [1, P * 2 * B, T]);
            const s = tf.reshape(responseLogProbs(model, V, ref, flat('xw', 'xl'), flat('yw', 'yl'), flat('mw', 'ml')), [P, 2 * B]);
            return [tf.slice(s, [0, 0], [P, B]), tf.slice(s, [0, B], [P, B])];
          });
          return { ...batch, refw: refw!, refl: refl! };
        },
      };
    },
    /** clip(l, 0, cap) with NaN/±Inf → cap: a diverged run costs the most, never nothing. */
    normalizeLoss: clippedNormalizer(LOSS_CAP[cfg.loss]),
  };
}
