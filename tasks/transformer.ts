// A character-level transformer LM on Moby Dick, in μP and SP twins, natively batched over the
// population: every product is a [P, ...] batched matMul (the wasm fast path), and token
// embedding/targets are one-hot products, so no gather (and its cpu-fallback gradient) is needed.
// Pre-LayerNorm blocks, ReLU MLP (4×width), no biases in the linear maps (LayerNorm has them).
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseOptions } from '../src/schema/parseOptions.js';
import { intIn, oneOf } from '../src/schema/fields.js';
import type { Params } from '../src/tree/params.js';
import { textBatches } from './data/batches.js';
import { loadText, type TextDataset } from './data/text.js';
import { initPopulation, type InitRule } from './init.js';
import { accuracyPerMember, classificationNormalizer, crossEntropyPerMember } from './normalize.js';
import type { Batch, BatchStream, Parametrization, Split, Task } from './types.js';
import { tidyTree } from '../src/tree/tidy.js';
import { lossGradsAndLayerStatistics, NO_TAP, type LayerTap } from '../src/optim/layerTap.js';
import type { LayerSpec } from '../src/optim/layerStatistics.js';

const MAX_SEQ_LEN = 4096;
const LN_EPS = 1e-5;
const MLP_RATIO = 4;

const transformerFields = {
  /** d_model. */
  width: intIn(1, 8192),
  /** Number of blocks. */
  depth: intIn(1, 64),
  /** Attention heads; must divide width. */
  heads: intIn(1, 8192),
  seqLen: intIn(1, MAX_SEQ_LEN),
  batchSize: intIn(1, 65536),
  parametrization: oneOf<Parametrization>(['mup', 'sp']),
};

export type TransformerConfig = z.output<z.ZodObject<typeof transformerFields>>;

/** Throws (naming the task, field, value and what is allowed) unless `cfg` is a valid TransformerConfig. */
export function validateTransformerConfig(cfg: unknown): TransformerConfig {
  const c = parseOptions('transformer task', transformerFields, cfg);
  if (c.width % c.heads !== 0) {
    throw new Error(`transformer task: option 'heads' must divide width (${c.width}); got ${c.heads}`);
  }
  return c;
}

/** Canonical name, e.g. transformer-mobydick-w64-d2-h4-t32-b16-mup. */
export function transformerName(cfg: TransformerConfig): string {
  const c = validateTransformerConfig(cfg);
  return `transformer-mobydick-w${c.width}-d${c.depth}-h${c.heads}-t${c.seqLen}-b${c.batchSize}-${c.parametrization}`;
}

export const TRANSFORMER_NAME_FORM = 'transformer-mobydick-w{width}-d{depth}-h{heads}-t{seqLen}-b{batchSize}-{mup|sp}';
const NAME_RE = /^transformer-mobydick-w([1-9]\d*)-d([1-9]\d*)-h([1-9]\d*)-t([1-9]\d*)-b([1-9]\d*)-(mup|sp)$/;

/** The config a canonical transformer name stands for; exactly the names transformerName emits. */
export function parseTransformerName(name: string): TransformerConfig {
  const m = NAME_RE.exec(name);
  if (m === null) {
    throw new Error(`transformer task: cannot parse name '${name}'; expected ${TRANSFORMER_NAME_FORM}, e.g. transformer-mobydick-w64-d2-h4-t32-b16-mup`);
  }
  return validateTransformerConfig({
    width: Number(m[1]),
    depth: Number(m[2]),
    heads: Number(m[3]),
    seqLen: Number(m[4]),
    batchSize: Number(m[5]),
    parametrization: m[6],
  });
}

/** μP divides attention logits by d_head (Tensor Programs V); SP by √d_head. */
export function attentionLogitScale(parametrization: Parametrization, dHead: number): number {
  return parametrization === 'mup' ? 1 / dHead : 1 / Math.sqrt(dHead);
}

/**
 * One member's parameter shapes: token and position embeddings, `depth` pre-LN blocks (norms,
 * Q/K/V/O [d, d], MLP [d, 4d] and [4d, d]), the final norm and the readout [d, vocab].
 */
export function transformerShapes(c: Pick<TransformerConfig, 'width' | 'depth' | 'seqLen'>, vocab: number): Record<string, number[]> {
  const d = c.width;
  const shapes: Record<string, number[]> = { 'embed/tokens': [vocab, d], 'embed/positions': [c.seqLen, d] };
  for (let l = 0; l < c.depth; l++) {
    Object.assign(shapes, {
      [`block${l}/norm1/scale`]: [d],
      [`block${l}/norm1/bias`]: [d],
      [`block${l}/attn/query`]: [d, d],
      [`block${l}/attn/key`]: [d, d],
      [`block${l}/attn/value`]: [d, d],
      [`block${l}/attn/out`]: [d, d],
      [`block${l}/norm2/scale`]: [d],
      [`block${l}/norm2/bias`]: [d],
      [`block${l}/mlp/in`]: [d, MLP_RATIO * d],
      [`block${l}/mlp/out`]: [MLP_RATIO * d, d],
    });
  }
  shapes['final_norm/scale'] = [d];
  shapes['final_norm/bias'] = [d];
  shapes['readout/kernel'] = [d, vocab];
  return shapes;
}

const isMatrix = (name: string) => name.includes('/attn/') || name.includes('/mlp/');

/** Additive causal mask [T, T]: 0 on and below the diagonal, a large negative above it. */
function causalMask(T: number): Float32Array {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  return m;
}

/** LayerNorm over the last axis; scale and bias [P, d] act on x [P, N, d]. */
export function layerNorm(x: tf.Tensor, scale: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const P = scale.shape[0]!;
  const d = scale.shape[1]!;
  const { mean, variance } = tf.moments(x, -1, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS)));
  return tf.add(tf.mul(normed, tf.reshape(scale, [P, 1, d])), tf.reshape(bias, [P, 1, d]));
}

/** The [P, d, d] projections of one attention layer. */
export interface AttentionWeights {
  query: tf.Tensor;
  key: tf.Tensor;
  value: tf.Tensor;
  out: tf.Tensor;
  /** Routes each projection's rows x and output z through a layer tap (layer statistics for MKOR); absent: none. */
  tap?: (projection: 'query' | 'key' | 'value' | 'out', x: tf.Tensor, z: tf.Tensor) => tf.Tensor;
}

/** Queries, keys and values of x [P, B, T, d], each split into heads: [P, B, H, T, d/H]. */
export function projectHeads(x: tf.Tensor, w: AttentionWeights, heads: number): { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
  const [P, B, T, d] = x.shape as [number, number, number, number];
  const dh = d / heads;
  const rows = tf.reshape(x, [P, B * T, d]);
  // [P, B·T, d] → [P, B, H, T, dh]
  const split = (which: 'query' | 'key' | 'value') => {
    const z = tf.matMul(rows, w[which]);
    return tf.transpose(tf.reshape(w.tap ? w.tap(which, rows, z) : z, [P, B, T, heads, dh]), [0, 1, 3, 2, 4]);
  };
  return { q: split('query'), k: split('key'), v: split('value') };
}

/** Heads [P, B, H, T, dh] concatenated back to [P, B, T, H·dh] and projected by `w.out` [P, d, d]. */
export function mergeHeads(mixed: tf.Tensor, w: Pick<AttentionWeights, 'out' | 'tap'>): tf.Tensor {
  const [P, B, H, T, dh] = mixed.shape as [number, number, number, number, number];
  const merged = tf.reshape(tf.transpose(mixed, [0, 1, 3, 2, 4]), [P, B * T, H * dh]);
  const z = tf.matMul(merged, w.out);
  return tf.reshape(w.tap ? w.tap('out', merged, z) : z, [P, B, T, H * dh]);
}

/**
 * Causal multi-head self-attention of x [P, B, T, d] (already normalized) with [P, d, d]
 * projections; logits are multiplied by `logitScale`. Returns [P, B, T, d].
 */
export function causalSelfAttention(x: tf.Tensor, w: AttentionWeights, heads: number, logitScale: number): tf.Tensor {
  return tf.tidy(() => {
    const T = x.shape[2]!;
    const { q, k, v } = projectHeads(x, w, heads);
    const logits = tf.add(tf.mul(tf.matMul(q, k, false, true), logitScale), tf.tensor2d(causalMask(T), [T, T]));
    return mergeHeads(tf.matMul(tf.softmax(logits), v), w);
  });
}

/** Self-attention of one block: normalized x [P, B, T, d] and that block's projections → [P, B, T, d]. */
export type BlockAttention = (x: tf.Tensor, w: AttentionWeights) => tf.Tensor;

/**
 * The pre-LayerNorm stack on embedded tokens h [P, B·T, d]: per block
 * h += Attn(LN₁(h)); h += W_out·ReLU(W_in·LN₂(h)), then the final LayerNorm and the readout,
 * logits = LN_f(h)·W_readout·readoutMultiplier, [P, B·T, vocab].
 */
export function preLnLogits(
  p: (name: string) => tf.Tensor,
  embedded: tf.Tensor,
  dims: { batch: number; seqLen: number; depth: number },
  attention: BlockAttention,
  readoutMultiplier: number,
  tap: LayerTap = NO_TAP,
): tf.Tensor {
  return tf.tidy(() => {
    const [P, N, d] = embedded.shape as [number, number, number];
    const { batch: B, seqLen: T } = dims;
    let h = embedded;
    for (let l = 0; l < dims.depth; l++) {
      const at = (s: string) => p(`block${l}/${s}`);
      const a = tf.reshape(layerNorm(h, at('norm1/scale'), at('norm1/bias')), [P, B, T, d]);
      const w: AttentionWeights = {
        query: at('attn/query'),
        key: at('attn/key'),
        value: at('attn/value'),
        out: at('attn/out'),
        ...(tap === NO_TAP ? {} : { tap: (which: string, x: tf.Tensor, z: tf.Tensor) => tap.dense(`block${l}/attn/${which}`, x, z) }),
      };
      h = tf.add(h, tf.reshape(attention(a, w), [P, N, d]));
      const m = layerNorm(h, at('norm2/scale'), at('norm2/bias'));
      const inner = tf.relu(tap.dense(`block${l}/mlp/in`, m, tf.matMul(m, at('mlp/in'))));
      h = tf.add(h, tap.dense(`block${l}/mlp/out`, inner, tf.matMul(inner, at('mlp/out'))));
    }
    const final = layerNorm(h, p('final_norm/scale'), p('final_norm/bias'));
    const logits = tap.dense('readout/kernel', final, tf.matMul(final, p('readout/kernel')));
    return readoutMultiplier === 1 ? logits : tf.mul(logits, readoutMultiplier);
  });
}

/**
 * Init rules, μP update scales and the init of a transformer's parameters (transformerShapes'
 * names): N(0, 1) embeddings, truncated N(0, 1/fan_in) matrices, zero biases, unit norm scales;
 * under μP the readout starts at zero and hidden matrices (attention, MLP) move 1/fan_in.
 */
export function transformerParameters(
  shapes: Readonly<Record<string, readonly number[]>>,
  parametrization: Parametrization,
): { mupScale: Record<string, number>; init: (seeds: readonly number[]) => Params } {
  const mup = parametrization === 'mup';
  const rules: Record<string, InitRule> = {};
  const mupScale: Record<string, number> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const fanInInit: InitRule = { kind: 'truncatedNormal', std: 1 / Math.sqrt(shape[0]!) };
    // N(0, 1) embeddings (as torch.nn.Embedding) in both twins: width-independent, as μP wants.
    if (name.startsWith('embed/')) rules[name] = { kind: 'truncatedNormal', std: 1 };
    else if (name.endsWith('/scale')) continue;
    else if (name.endsWith('/bias')) rules[name] = { kind: 'zeros' };
    else if (name === 'readout/kernel') rules[name] = mup ? { kind: 'zeros' } : fanInInit;
    else rules[name] = fanInInit;
  }
  // Hidden matrices (Q/K/V/O, MLP) move 1/fan_in; embeddings, norms and the readout move 1.
  for (const [name, shape] of Object.entries(shapes)) mupScale[name] = mup && isMatrix(name) ? 1 / shape[0]! : 1;
  const drawnShapes = Object.fromEntries(Object.entries(shapes).filter(([n]) => !n.endsWith('/scale')));

  /** Norm scales start at 1 (no init rule for that); the rest draw per member from their seeds. */
  const init = (seeds: readonly number[]): Params => {
    const drawn = initPopulation(seeds, drawnShapes, rules);
    const out: Params = {};
    for (const [name, shape] of Object.entries(shapes)) out[name] = drawn[name] ?? tf.ones([seeds.length, ...shape]);
    return out;
  };
  return { mupScale, init };
}

/**
 * The causal model's next-character logits [P, B·Tb, vocab] for tokens [P, B, Tb] (Tb ≤ seqLen):
 * the task's loss reads them, and so does the preference task (tasks/preference), which scores
 * responses under this same model.
 */
export function causalLogits(cfg: TransformerConfig, vocab: number, params: Params, tokens: tf.Tensor, tap: LayerTap = NO_TAP): tf.Tensor {
  const { width: d, depth, heads, seqLen: T } = cfg;
  const logitScale = attentionLogitScale(cfg.parametrization, d / heads);
  const readoutMultiplier = cfg.parametrization === 'mup' ? 1 / d : 1;
  return tf.tidy(() => {
    const p = (name: string): tf.Tensor => {
      const t = params[name];
      if (t === undefined) throw new Error(`transformer task: parameter '${name}' is missing`);
      return t;
    };
    const [P, B, Tb] = tokens.shape as [number, number, number];
    if (Tb > T) throw new Error(`transformer task: batch has ${Tb} positions, the model holds ${T}`);
    // int32 one-hot, then cast: tfjs-backend-wasm 4.22's OneHot ignores dtype 'float32' and writes
    // int32 1s into the float buffer (1.4e-45), which silently zeroed the token embedding.
    const oneHot = (ids: tf.Tensor) => tf.cast(tf.oneHot(tf.reshape(ids, [P, B * Tb]) as tf.Tensor2D, vocab), 'float32');
    // Token embedding as a one-hot product: [P, B·T, V]·[P, V, d].
    const embedded = tf.reshape(tf.matMul(oneHot(tokens), p('embed/tokens')), [P, B, Tb, d]);
    const positions = tf.reshape(tf.slice(p('embed/positions'), [0, 0, 0], [P, Tb, d]), [P, 1, Tb, d]);
    const h = tf.reshape(tf.add(embedded, positions), [P, B * Tb, d]);
    const attention: BlockAttention = (a, w) => causalSelfAttention(a, w, heads, logitScale);
    return preLnLogits(p, h, { batch: B, seqLen: Tb, depth }, attention, readoutMultiplier, tap);
  });
}

/** The linear layers of transformerShapes' model (no biases): each block's attention projections and MLP, then the readout. */
export function transformerLayers(depth: number): LayerSpec[] {
  const layers: LayerSpec[] = [];
  for (let l = 0; l < depth; l++) {
    for (const s of ['attn/query', 'attn/key', 'attn/value', 'attn/out', 'mlp/in', 'mlp/out'])
      layers.push({ kernel: `block${l}/${s}`, bias: null, kind: 'dense' });
  }
  layers.push({ kernel: 'readout/kernel', bias: null, kind: 'dense' });
  return layers;
}

export function transformerTask(config: TransformerConfig): Task {
  const cfg = validateTransformerConfig(config);
  const text: TextDataset = loadText('moby-dick');
  const V = text.vocabSize;
  const { width: d, depth, seqLen: T, batchSize } = cfg;
  const shapes = transformerShapes(cfg, V);
  const { mupScale, init } = transformerParameters(shapes, cfg.parametrization);

  const logitsOf = (params: Params, batch: Batch, tap: LayerTap = NO_TAP): { logits: tf.Tensor; labels: tf.Tensor } => {
    return tidyTree(() => {
      const tokens = batch['x']!;
      const [P, B, Tb] = tokens.shape as [number, number, number];
      return { logits: causalLogits(cfg, V, params, tokens, tap), labels: tf.reshape(batch['y']!, [P, B * Tb]) };
    });
  };

  return {
    meta: {
      name: transformerName(cfg),
      family: 'transformer',
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
          const { logits, labels } = logitsOf(p, batch, tap);
          return crossEntropyPerMember(logits, labels);
        },
        params,
        true,
      ),
    // Per member: mean over its B·T tokens.
    loss(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => {
        const { logits, labels } = logitsOf(params, batch);
        return crossEntropyPerMember(logits, labels);
      });
    },
    accuracy(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => {
        const { logits, labels } = logitsOf(params, batch);
        return accuracyPerMember(logits, labels);
      });
    },
    batches: (split: Split, seeds: readonly number[]): BatchStream => textBatches(text, split, seeds, batchSize, T),
    normalizeLoss: classificationNormalizer(V),
  };
}
