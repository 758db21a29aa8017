// A small conv net on MNIST / Fashion-MNIST, in μP and SP twins. Convolutions cannot batch over
// the population natively, so they loop over the P members; the dense readout is batched.
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseOptions } from '../src/schema/parseOptions.js';
import { intIn, oneOf } from '../src/schema/fields.js';
import type { Params } from '../src/tree/params.js';
import { lossGradsAndLayerStatistics, NO_TAP, type LayerTap } from '../src/optim/layerTap.js';
import { imageBatches } from './data/batches.js';
import { loadImageDataset, type ImageDataset } from './data/images.js';
import { initPopulation, type InitRule } from './init.js';
import { accuracyPerMember, classificationNormalizer, crossEntropyPerMember } from './normalize.js';
import type { Batch, BatchStream, Parametrization, Split, Task } from './types.js';

export const CONV_DATASETS = ['mnist', 'fashion-mnist'] as const;
export const CONV_IMAGE_SIZES = [8, 16, 28] as const;
const NUM_CLASSES = 10;

const convFields = {
  dataset: oneOf(CONV_DATASETS),
  imageSize: oneOf(CONV_IMAGE_SIZES),
  /** Channels of both conv layers. */
  width: intIn(1, 4096),
  batchSize: intIn(1, 65536),
  parametrization: oneOf<Parametrization>(['mup', 'sp']),
};

export type ConvConfig = z.output<z.ZodObject<typeof convFields>>;

/** Throws (naming the task, field, value and what is allowed) unless `cfg` is a valid ConvConfig. */
export function validateConvConfig(cfg: unknown): ConvConfig {
  return parseOptions('conv task', convFields, cfg);
}

const DATASET_TAG: Record<ConvConfig['dataset'], string> = { mnist: 'mnist', 'fashion-mnist': 'fashion' };

/** Canonical name, e.g. conv-mnist8-w16-b128-mup. */
export function convName(cfg: ConvConfig): string {
  const c = validateConvConfig(cfg);
  return `conv-${DATASET_TAG[c.dataset]}${c.imageSize}-w${c.width}-b${c.batchSize}-${c.parametrization}`;
}

export const CONV_NAME_FORM = 'conv-{mnist|fashion}{8|16|28}-w{width}-b{batchSize}-{mup|sp}';
const NAME_RE = /^conv-(mnist|fashion)(8|16|28)-w([1-9]\d*)-b([1-9]\d*)-(mup|sp)$/;

/** The config a canonical conv name stands for; exactly the names convName emits. */
export function parseConvName(name: string): ConvConfig {
  const m = NAME_RE.exec(name);
  if (m === null) throw new Error(`conv task: cannot parse name '${name}'; expected ${CONV_NAME_FORM}, e.g. conv-mnist8-w16-b128-mup`);
  return validateConvConfig({
    dataset: m[1] === 'mnist' ? 'mnist' : 'fashion-mnist',
    imageSize: Number(m[2]),
    width: Number(m[3]),
    batchSize: Number(m[4]),
    parametrization: m[5],
  });
}

/** One member's parameter shapes: conv3×3 → relu → conv3×3/2 → relu → global mean → dense. */
function convShapes(c: number): Record<string, number[]> {
  return {
    'conv1/kernel': [3, 3, 1, c],
    'conv1/bias': [c],
    'conv2/kernel': [3, 3, c, c],
    'conv2/bias': [c],
    'out/kernel': [c, NUM_CLASSES],
    'out/bias': [NUM_CLASSES],
  };
}

/** Fan-in of a kernel: every dim but the last (kh·kw·c_in for a conv, c_in for a dense layer). */
const fanIn = (shape: readonly number[]): number => shape.slice(0, -1).reduce((p, d) => p * d, 1);

/**
 * TF 'same' 3×3 convolution of x [B, H, W, C] with k [3, 3, C, C'], stride 1 or 2 (stride 2 needs
 * even H and W). The forward pass is wasm's XNNPACK Conv2D; the gradients are rewritten as XNNPACK
 * convolutions and matMuls too, because wasm's Conv2DBackpropInput is a naive loop (190 ms for
 * one 28×28, batch-128, width-32 layer) and Conv2DBackpropFilter runs on the cpu fallback.
 * `inputGrad: false` skips dx (an input layer's data needs none) and returns zeros.
 */
export function conv3x3(x: tf.Tensor4D, k: tf.Tensor4D, stride: 1 | 2, inputGrad = true): tf.Tensor4D {
  const [, H, W] = x.shape;
  if (stride === 2 && (H % 2 !== 0 || W % 2 !== 0)) throw new Error(`conv3x3: stride 2 needs even H and W; got ${H}×${W}`);
  const op = tf.customGrad((xIn, kIn, save) => {
    const [xs, ks] = [xIn as tf.Tensor4D, kIn as tf.Tensor4D];
    (save as tf.GradSaveFunc)([xs, ks]);
    return {
      value: tf.conv2d(xs, ks, stride, 'same'),
      gradFunc: (dy, saved) => {
        const [xs, ks] = saved as [tf.Tensor4D, tf.Tensor4D];
        const g = dy as tf.Tensor4D;
        const dx = !inputGrad ? tf.zerosLike(xs) : stride === 1 ? inputGradStride1(g, ks) : inputGradStride2(g, ks);
        return [dx, filterGrad(xs, g, stride)];
      },
    };
  });
  return op(x, k) as tf.Tensor4D;
}

/** k [3, 3, C, C'] → the transposed conv's kernel [3, 3, C', C], flipped in space. */
const flippedT = (k: tf.Tensor4D): tf.Tensor4D => tf.transpose(tf.reverse(k, [0, 1]), [0, 1, 3, 2]);

function inputGradStride1(dy: tf.Tensor4D, k: tf.Tensor4D): tf.Tensor4D {
  return tf.conv2d(dy, flippedT(k), 1, 'same');
}

/**
 * Stride 2 (even sizes, so 'same' pads one row/column after): input row 2m takes taps 2 and 0
 * from output rows m−1 and m, row 2m+1 takes tap 1 from row m; columns likewise. So each
 * (row, column) parity of dx is a small stride-1 convolution of dy (2×2, 2×1, 1×2 or 1×1 taps),
 * and the four planes interleave by two transposes (wasm's DepthToSpace or a 5-D transpose
 * would take ~10× longer; its Conv2DBackpropInput ~20×).
 */
function inputGradStride2(dy: tf.Tensor4D, k: tf.Tensor4D): tf.Tensor4D {
  const [B, Ho, Wo] = dy.shape;
  const C = k.shape[2];
  const kT = tf.transpose(k, [0, 1, 3, 2]);
  const taps = (parity: number) => (parity === 0 ? [2, 0] : [1]);
  const planes: tf.Tensor[] = [];
  for (const pr of [0, 1]) {
    const rows = tf.concat(
      taps(pr).map((i) => tf.slice(kT, [i, 0, 0, 0], [1, 3, -1, -1])),
      0,
    );
    for (const pc of [0, 1]) {
      const kernel = tf.concat(
        taps(pc).map((j) => tf.slice(rows, [0, j, 0, 0], [-1, 1, -1, -1])),
        1,
      ) as tf.Tensor4D;
      planes.push(
        tf.conv2d(
          tf.pad(dy, [
            [0, 0],
            [1 - pr, 0],
            [1 - pc, 0],
            [0, 0],
          ]),
          kernel,
          1,
          'valid',
        ),
      );
    }
  }
  // [pr, pc, B·Ho·Wo, C] → [pr, B·Ho·Wo, pc, C] → [B·Ho, pr, Wo·2·C] = [B, 2·Ho, 2·Wo, C]
  const columns = tf.transpose(tf.reshape(tf.stack(planes), [2, 2, B * Ho * Wo, C]), [0, 2, 1, 3]);
  return tf.reshape(tf.transpose(tf.reshape(columns, [2, B * Ho, Wo * 2 * C]), [1, 0, 2]), [B, 2 * Ho, 2 * Wo, C]);
}

/**
 * dk[i, j, c, c'] = Σ xpad[n, s·h + i, s·w + j, c]·dy[n, h, w, c']. One input channel: a
 * [9, B·H·W]·[B·H·W, C'] matMul over the nine shifted windows. More: a convolution of the
 * channels-as-batch input [C, Hp, Wp, B] with dy as a [Ho, Wo, B, C'] kernel, dilated by s.
 */
function filterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const [, Ho, Wo, cOut] = dy.shape;
  const Hp = (Ho - 1) * stride + 3;
  const Wp = (Wo - 1) * stride + 3;
  const top = Math.floor((Hp - H) / 2);
  const left = Math.floor((Wp - W) / 2);
  const padded = tf.pad(x, [
    [0, 0],
    [top, Hp - H - top],
    [left, Wp - W - left],
    [0, 0],
  ]);
  if (C === 1 && stride === 1) {
    const plane = tf.reshape(padded, [B, Hp, Wp]);
    const windows: tf.Tensor[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) windows.push(tf.reshape(tf.slice(plane, [0, i, j], [B, Ho, Wo]), [1, -1]));
    return tf.reshape(tf.matMul(tf.concat(windows, 0), tf.reshape(dy, [-1, cOut])), [3, 3, 1, cOut]);
  }
  const channelsAsBatch = tf.transpose(padded, [3, 1, 2, 0]) as tf.Tensor4D;
  const dyAsKernel = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  return tf.transpose(tf.conv2d(channelsAsBatch, dyAsKernel, 1, 'valid', 'NHWC', stride), [1, 2, 0, 3]);
}

export function convTask(config: ConvConfig): Task {
  const cfg = validateConvConfig(config);
  const { width: c, imageSize: size, batchSize } = cfg;
  const mup = cfg.parametrization === 'mup';
  const shapes = convShapes(c);
  const outMultiplier = mup ? 1 / c : 1;
  const rules: Record<string, InitRule> = {};
  const mupScale: Record<string, number> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const isOut = name.startsWith('out/');
    const isBias = name.endsWith('/bias');
    const fanInInit: InitRule = { kind: 'truncatedNormal', std: 1 / Math.sqrt(fanIn(shape)) };
    if (mup) rules[name] = isOut ? { kind: 'zeros' } : isBias ? { kind: 'normal', std: 1 } : fanInInit;
    else rules[name] = isBias ? { kind: 'zeros' } : fanInInit;
    // Only conv2 maps hidden to hidden; conv1 is the input layer, `out` the output layer.
    mupScale[name] = mup && name === 'conv2/kernel' ? 1 / fanIn(shape) : 1;
  }

  let dataset: ImageDataset | undefined;
  const data = (): ImageDataset => (dataset ??= loadImageDataset(cfg.dataset, size));

  /** Logits [P, B, 10] from images x [P, B, size²]: the convolutions loop over members. */
  const logits = (params: Params, x: tf.Tensor, tap: LayerTap = NO_TAP): tf.Tensor => {
    const p = (name: string): tf.Tensor => {
      const t = params[name];
      if (t === undefined) throw new Error(`conv task: parameter '${name}' is missing`);
      return t;
    };
    const [P, B] = x.shape as [number, number];
    const pooled: tf.Tensor[] = [];
    for (let i = 0; i < P; i++) {
      // Slices are differentiable, so gradients flow back into the [P, ...] parameters.
      const take = (t: tf.Tensor) => tf.squeeze(tf.slice(t, [i], [1]), [0]);
      const images = tf.reshape(take(x), [B, size, size, 1]) as tf.Tensor4D;
      const z1 = tf.add(conv3x3(images, take(p('conv1/kernel')) as tf.Tensor4D, 1, false), take(p('conv1/bias'))) as tf.Tensor4D;
      const h1 = tf.relu(tap.conv('conv1/kernel', i, images, z1, [3, 3], 1)) as tf.Tensor4D;
      const z2 = tf.add(conv3x3(h1, take(p('conv2/kernel')) as tf.Tensor4D, 2), take(p('conv2/bias'))) as tf.Tensor4D;
      const h2 = tf.relu(tap.conv('conv2/kernel', i, h1, z2, [3, 3], 2));
      pooled.push(tf.mean(h2, [1, 2]));
    }
    const features = tf.stack(pooled);
    const out = tap.dense('out/kernel', features, tf.add(tf.matMul(features, p('out/kernel')), tf.reshape(p('out/bias'), [P, 1, -1])));
    // μP: the output layer's whole output (bias included) is multiplied by 1/fan_in.
    return outMultiplier === 1 ? out : tf.mul(out, outMultiplier);
  };

  return {
    meta: {
      name: convName(cfg),
      family: 'conv',
      parametrization: cfg.parametrization,
      dataset: `${cfg.dataset}${size}`,
      width: c,
      depth: 2,
      batchSize,
      paramCount: Object.values(shapes).reduce((n, s) => n + s.reduce((p, d) => p * d, 1), 0),
    },
    shapes,
    mupScale,
    init: (seeds) => initPopulation(seeds, shapes, rules),
    layers: [
      { kernel: 'conv1/kernel', bias: 'conv1/bias', kind: 'conv' },
      { kernel: 'conv2/kernel', bias: 'conv2/bias', kind: 'conv' },
      { kernel: 'out/kernel', bias: 'out/bias', kind: 'dense' },
    ],
    lossGradsAndStatistics: (params, batch) =>
      lossGradsAndLayerStatistics((p, tap) => crossEntropyPerMember(logits(p, batch['x']!, tap), batch['y']!), params, true),
    loss: (params: Params, batch: Batch): tf.Tensor1D => tf.tidy(() => crossEntropyPerMember(logits(params, batch['x']!), batch['y']!)),
    accuracy: (params: Params, batch: Batch): tf.Tensor1D => tf.tidy(() => accuracyPerMember(logits(params, batch['x']!), batch['y']!)),
    batches: (split: Split, seeds: readonly number[]): BatchStream => imageBatches(data(), split, seeds, batchSize),
    normalizeLoss: classificationNormalizer(NUM_CLASSES),
  };
}
