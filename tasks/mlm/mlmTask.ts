// A BERT-style masked language model on Moby Dick, in μP and SP twins, with NEZHA's functional
// relative positions or BERT's learned absolute ones, natively batched over the population like
// tasks/transformer.ts (whose pre-LayerNorm blocks, init and μP rules it reuses), but bidirectional.
//
// Tokens are characters (the V characters of the book, plus one [MASK] input id V; the readout
// covers the V characters). The corpus is small: a capped word vocabulary would put most
// parameters and compute in the embedding and readout, and would need an out-of-vocabulary token.
// With characters, whole-word masking is meaningful: a word spans several tokens, as BERT's
// WordPiece sub-tokens do, and is masked (or not) as a whole (./masking.ts).
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { intIn, oneOf } from '../../src/schema/fields.js';
import { parseOptions } from '../../src/schema/parseOptions.js';
import type { Params } from '../../src/tree/params.js';
import { tidyTree } from '../../src/tree/tidy.js';
import { loadText, type TextDataset } from '../data/text.js';
import { classificationNormalizer } from '../normalize.js';
import { attentionLogitScale, preLnLogits, transformerLayers, transformerParameters, transformerShapes, type BlockAttention } from '../transformer.js';
import { lossGradsAndLayerStatistics, NO_TAP, type LayerTap } from '../../src/optim/layerTap.js';
import type { Batch, BatchStream, Parametrization, Split, Task } from '../types.js';
import { maskedTextBatches } from './batches.js';
import { encoderSelfAttention, relativeDistanceRows } from './relativePositions.js';

export type PositionEncoding = 'nezha' | 'abs';

const mlmFields = {
  /** d_model. */
  width: intIn(1, 8192),
  /** Number of blocks. */
  depth: intIn(1, 64),
  /** Attention heads; must divide width. */
  heads: intIn(1, 8192),
  seqLen: intIn(1, 4096),
  batchSize: intIn(1, 65536),
  /** NEZHA's fixed relative sinusoids in every attention layer, or learned absolute embeddings added to the input. */
  positions: oneOf<PositionEncoding>(['nezha', 'abs']),
  parametrization: oneOf<Parametrization>(['mup', 'sp']),
};

export type MlmConfig = z.output<z.ZodObject<typeof mlmFields>>;

/** Throws (naming the task, field, value and what is allowed) unless `cfg` is a valid MlmConfig. */
export function validateMlmConfig(cfg: unknown): MlmConfig {
  const c = parseOptions('mlm task', mlmFields, cfg);
  if (c.width % c.heads !== 0) throw new Error(`mlm task: option 'heads' must divide width (${c.width}); got ${c.heads}`);
  return c;
}

export const MLM_NAME_FORM = 'mlm-mobydick-w{width}-d{depth}-h{heads}-t{seqLen}-b{batchSize}-{nezha|abs}-{mup|sp}';
const NAME_RE = /^mlm-mobydick-w([1-9]\d*)-d([1-9]\d*)-h([1-9]\d*)-t([1-9]\d*)-b([1-9]\d*)-(nezha|abs)-(mup|sp)$/;

/** Canonical name, e.g. mlm-mobydick-w32-d2-h4-t32-b16-nezha-mup. */
export function mlmName(cfg: MlmConfig): string {
  const c = validateMlmConfig(cfg);
  return `mlm-mobydick-w${c.width}-d${c.depth}-h${c.heads}-t${c.seqLen}-b${c.batchSize}-${c.positions}-${c.parametrization}`;
}

/** The config a canonical mlm name stands for; exactly the names mlmName emits. */
export function parseMlmName(name: string): MlmConfig {
  const m = NAME_RE.exec(name);
  if (m === null) throw new Error(`mlm task: cannot parse name '${name}'; expected ${MLM_NAME_FORM}, e.g. mlm-mobydick-w32-d2-h4-t32-b16-nezha-mup`);
  return validateMlmConfig({
    width: Number(m[1]),
    depth: Number(m[2]),
    heads: Number(m[3]),
    seqLen: Number(m[4]),
    batchSize: Number(m[5]),
    positions: m[6],
    parametrization: m[7],
  });
}

/**
 * One member's shapes: transformer.ts's, with the input table holding V + 1 rows (the characters
 * and [MASK]) and, under NEZHA, no position table (its positions live in the attention).
 */
function mlmShapes(c: MlmConfig, V: number): Record<string, number[]> {
  const shapes = transformerShapes(c, V);
  shapes['embed/tokens'] = [V + 1, c.width];
  if (c.positions === 'nezha') delete shapes['embed/positions'];
  return shapes;
}

/**
 * Masked-LM cross-entropy per member: Σ w·CE / Σ w over its B·T positions, with
 * CE = −log softmax(logits)[y]; logits [P, N, V], y [P, N] int32, w [P, N] → [P]. A member with no
 * predicted position (only possible for a few tiny windows of whitespace) gets 0, not 0/0 = NaN,
 * which would read as a diverged run.
 */
export function maskedCrossEntropy(logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(labels as tf.Tensor2D, logits.shape[2]!), tf.logSoftmax(logits)), -1));
    return tf.div(tf.sum(tf.mul(weights, nll), 1), tf.maximum(tf.sum(weights, 1), 1)) as tf.Tensor1D;
  });
}

export function mlmTask(config: MlmConfig): Task {
  const cfg = validateMlmConfig(config);
  const text: TextDataset = loadText('moby-dick');
  const V = text.vocabSize;
  const { width: d, depth, heads, seqLen: T, batchSize } = cfg;
  const nezha = cfg.positions === 'nezha';
  const shapes = mlmShapes(cfg, V);
  const logitScale = attentionLogitScale(cfg.parametrization, d / heads);
  const readoutMultiplier = cfg.parametrization === 'mup' ? 1 / d : 1;
  const { mupScale, init } = transformerParameters(shapes, cfg.parametrization);
  // The fixed [2T − 1, d_head] relative distance rows per window length, computed once.
  const relative = new Map<number, Float32Array>();
  const relativeFor = (Tb: number) => {
    let a = relative.get(Tb);
    if (a === undefined) relative.set(Tb, (a = relativeDistanceRows(Tb, d / heads)));
    return a;
  };

  const get = (params: Params, name: string): tf.Tensor => {
    const t = params[name];
    if (t === undefined) throw new Error(`mlm task: parameter '${name}' is missing`);
    return t;
  };
  const take = (batch: Batch, key: string): tf.Tensor => {
    const t = batch[key];
    if (t === undefined) throw new Error(`mlm task: batch has no '${key}' (it needs x, y and w, [P, B, T])`);
    return t;
  };

  /** Logits [P, B·T, V], labels [P, B·T] and weights [P, B·T] of a batch. */
  const forward = (params: Params, batch: Batch, tap: LayerTap = NO_TAP): { logits: tf.Tensor; labels: tf.Tensor; weights: tf.Tensor } =>
    tidyTree(() => {
      const p = (name: string) => get(params, name);
      const tokens = take(batch, 'x');
      const [P, B, Tb] = tokens.shape as [number, number, number];
      if (Tb > T) throw new Error(`mlm task: batch has ${Tb} positions, the model holds ${T}`);
      // Token embedding as a one-hot product over the V + 1 input ids: [P, B·T, V+1]·[P, V+1, d]. An
      // int32 one-hot, then cast: tfjs-backend-wasm 4.22's OneHot ignores dtype 'float32' and writes
      // int32 1s into a float buffer (1.4e-45), which would zero the embedding.
      const oneHot = tf.cast(tf.oneHot(tf.reshape(tokens, [P, B * Tb]) as tf.Tensor2D, V + 1), 'float32');
      let h = tf.matMul(oneHot, p('embed/tokens'));
      let attention: BlockAttention;
      if (nezha) {
        const a = tf.tensor2d(relativeFor(Tb), [2 * Tb - 1, d / heads]);
        attention = (x, w) => encoderSelfAttention(x, w, heads, logitScale, a);
      } else {
        const positions = tf.reshape(tf.slice(p('embed/positions'), [0, 0, 0], [P, Tb, d]), [P, 1, Tb, d]);
        h = tf.reshape(tf.add(tf.reshape(h, [P, B, Tb, d]), positions), [P, B * Tb, d]);
        attention = (x, w) => encoderSelfAttention(x, w, heads, logitScale, null);
      }
      return {
        logits: preLnLogits(p, h, { batch: B, seqLen: Tb, depth }, attention, readoutMultiplier, tap),
        labels: tf.reshape(take(batch, 'y'), [P, B * Tb]),
        weights: tf.reshape(take(batch, 'w'), [P, B * Tb]),
      };
    });

  return {
    meta: {
      name: mlmName(cfg),
      family: 'mlm',
      parametrization: cfg.parametrization,
      dataset: 'moby-dick',
      width: d,
      depth,
      batchSize,
      paramCount: Object.values(shapes).reduce((n, s) => n + s.reduce((p, k) => p * k, 1), 0),
    },
    shapes,
    mupScale,
    init,
    layers: transformerLayers(depth),
    lossGradsAndStatistics: (params, batch) =>
      lossGradsAndLayerStatistics(
        (p, tap) => {
          const { logits, labels, weights } = forward(p, batch, tap);
          return maskedCrossEntropy(logits, labels, weights);
        },
        params,
        true,
      ),
    loss(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => {
        const { logits, labels, weights } = forward(params, batch);
        return maskedCrossEntropy(logits, labels, weights);
      });
    },
    // Masked-token accuracy: Σ w·[argmax = y] / Σ w per member.
    accuracy(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => {
        const { logits, labels, weights } = forward(params, batch);
        const correct = tf.cast(tf.equal(tf.argMax(logits, -1), labels), 'float32');
        return tf.div(tf.sum(tf.mul(weights, correct), 1), tf.maximum(tf.sum(weights, 1), 1)) as tf.Tensor1D;
      });
    },
    batches: (split: Split, seeds: readonly number[]): BatchStream => maskedTextBatches(text, split, seeds, batchSize, T),
    normalizeLoss: classificationNormalizer(V),
  };
}
