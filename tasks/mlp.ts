import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../src/tree/params.js';
import { loadImageDataset, type ImageDatasetName, type ImageSize } from './data/images.js';
import { imageBatches } from './data/batches.js';
import { initPopulation, type InitRule } from './init.js';
import { accuracyPerMember, classificationNormalizer, crossEntropyPerMember } from './normalize.js';
import type { Batch, Parametrization, Task } from './types.js';
import { cpuKernels } from '../src/kernels/native.js';
import { mlpLossAndGrads } from '../src/kernels/mlpTask.js';
import { lossGradsAndLayerStatistics, NO_TAP, type LayerTap } from '../src/optim/layerTap.js';

export const ACTIVATIONS = ['relu', 'tanh', 'gelu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export interface MlpConfig {
  dataset: ImageDatasetName;
  imageSize: ImageSize;
  /** Hidden width. */
  width: number;
  /** Number of hidden layers. */
  depth: number;
  activation: Activation;
  batchSize: number;
  parametrization: Parametrization;
}

const DATASET_TAG: Record<ImageDatasetName, string> = { mnist: 'mnist', 'fashion-mnist': 'fashion' };
const NUM_CLASSES = 10;
export const MAX_WIDTH = 16384;
export const MAX_DEPTH = 32;

/** `mlp-mnist16-w256-d3-relu-b4096-mup`: every field, in this order. */
export function mlpName(c: MlpConfig): string {
  return `mlp-${DATASET_TAG[c.dataset]}${c.imageSize}-w${c.width}-d${c.depth}-${c.activation}-b${c.batchSize}-${c.parametrization}`;
}

const NAME = /^mlp-(mnist|fashion)(8|16|28)-w(\d+)-d(\d+)(?:-(relu|tanh|gelu))?(?:-b(\d+))?(?:-(mup|sp))?$/;
export const MLP_NAME_FORM = 'mlp-{mnist|fashion}{8|16|28}-w<width>-d<depth>[-{relu|tanh|gelu}][-b<batch>][-{mup|sp}] (defaults relu, b128, mup)';

/** Parses a name of MLP_NAME_FORM; missing optional parts take the defaults. */
export function parseMlpName(name: string): MlpConfig {
  const m = NAME.exec(name);
  if (!m) throw new Error(`'${name}' is not an MLP task name; expected ${MLP_NAME_FORM}`);
  return validateMlpConfig({
    dataset: m[1] === 'fashion' ? 'fashion-mnist' : 'mnist',
    imageSize: Number(m[2]) as ImageSize,
    width: Number(m[3]),
    depth: Number(m[4]),
    activation: (m[5] ?? 'relu') as Activation,
    batchSize: m[6] === undefined ? 128 : Number(m[6]),
    parametrization: (m[7] ?? 'mup') as Parametrization,
  });
}

function intIn(task: string, field: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(`${task}: ${field} must be an integer in [${lo}, ${hi}]; got ${v}`);
  }
}

export function validateMlpConfig(c: MlpConfig): MlpConfig {
  const task = 'mlp task';
  if (c.dataset !== 'mnist' && c.dataset !== 'fashion-mnist') {
    throw new Error(`${task}: dataset must be 'mnist' or 'fashion-mnist'; got ${JSON.stringify(c.dataset)}`);
  }
  if (![8, 16, 28].includes(c.imageSize)) throw new Error(`${task}: imageSize must be 8, 16 or 28; got ${c.imageSize}`);
  intIn(task, 'width', c.width, 1, MAX_WIDTH);
  intIn(task, 'depth', c.depth, 1, MAX_DEPTH);
  intIn(task, 'batchSize', c.batchSize, 1, 1 << 16);
  if (!ACTIVATIONS.includes(c.activation)) {
    throw new Error(`${task}: activation must be one of ${ACTIVATIONS.join(', ')}; got ${JSON.stringify(c.activation)}`);
  }
  if (c.parametrization !== 'mup' && c.parametrization !== 'sp') {
    throw new Error(`${task}: parametrization must be 'mup' or 'sp'; got ${JSON.stringify(c.parametrization)}`);
  }
  return c;
}

function activate(x: tf.Tensor, a: Activation): tf.Tensor {
  if (a === 'relu') return tf.relu(x);
  if (a === 'tanh') return tf.tanh(x);
  // tanh approximation, as jax.nn.gelu's default
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** Layer names in order: hidden layers `layer{i}/kernel|bias`, then `readout/kernel|bias`. */
function layers(c: MlpConfig): { name: string; fanIn: number; fanOut: number }[] {
  const input = c.imageSize * c.imageSize;
  const out = [];
  for (let i = 0; i < c.depth; i++) out.push({ name: `layer${i}`, fanIn: i === 0 ? input : c.width, fanOut: c.width });
  out.push({ name: 'readout', fanIn: c.width, fanOut: NUM_CLASSES });
  return out;
}

/**
 * Forward pass for a population: x [P, B, D] → logits [P, B, 10]; with `collect`, every hidden
 * activation [P, B, width] too (the μP coordinate check reads them).
 */
export function mlpForward(c: MlpConfig, params: Params, x: tf.Tensor, collect?: tf.Tensor[], tap: LayerTap = NO_TAP): tf.Tensor {
  const ls = layers(c);
  let h = x;
  for (const l of ls) {
    const w = params[`${l.name}/kernel`]!;
    const b = params[`${l.name}/bias`]!;
    const z = tap.dense(`${l.name}/kernel`, h, tf.add(tf.matMul(h, w), tf.expandDims(b, 1)));
    if (l.name === 'readout') {
      // μP: the readout's whole output (bias included) is multiplied by 1/fan_in.
      return c.parametrization === 'mup' ? tf.mul(z, 1 / l.fanIn) : z;
    }
    h = activate(z, c.activation);
    collect?.push(h);
  }
  throw new Error('unreachable');
}

/** An image MLP (learned_optimization's ImageMLP) in μP or standard parametrization. */
export function mlpTask(config: MlpConfig): Task {
  const c = validateMlpConfig(config);
  const ls = layers(c);
  const mup = c.parametrization === 'mup';
  const shapes: Record<string, number[]> = {};
  const rules: Record<string, InitRule> = {};
  const mupScale: Record<string, number> = {};
  ls.forEach((l, i) => {
    const kernel = `${l.name}/kernel`;
    const bias = `${l.name}/bias`;
    shapes[kernel] = [l.fanIn, l.fanOut];
    shapes[bias] = [l.fanOut];
    const readout = l.name === 'readout';
    const std = 1 / Math.sqrt(l.fanIn);
    if (mup) {
      rules[kernel] = readout ? { kind: 'zeros' } : { kind: 'truncatedNormal', std };
      rules[bias] = readout ? { kind: 'zeros' } : { kind: 'normal', std: 1 };
      // hidden-to-hidden matrices 1/fan_in; input weights, readout and biases 1
      mupScale[kernel] = !readout && i > 0 ? 1 / l.fanIn : 1;
    } else {
      rules[kernel] = { kind: 'truncatedNormal', std };
      rules[bias] = { kind: 'zeros' };
      mupScale[kernel] = 1;
    }
    mupScale[bias] = 1;
  });
  const paramCount = Object.values(shapes).reduce((s, sh) => s + sh.reduce((p, d) => p * d, 1), 0);
  const dataset = () => loadImageDataset(c.dataset, c.imageSize);
  return {
    meta: {
      name: mlpName(c),
      family: 'mlp',
      parametrization: c.parametrization,
      dataset: `${c.dataset}${c.imageSize}`,
      width: c.width,
      depth: c.depth,
      batchSize: c.batchSize,
      paramCount,
    },
    shapes,
    mupScale,
    init: (seeds) => initPopulation(seeds, shapes, rules),
    lossAndGrads: (params, batch) => nativeLossAndGrads(c, params, batch),
    layers: ls.map((l) => ({ kernel: `${l.name}/kernel`, bias: `${l.name}/bias`, kind: 'dense' as const })),
    lossGradsAndStatistics: (params, batch) =>
      lossGradsAndLayerStatistics((p, tap) => crossEntropyPerMember(mlpForward(c, p, batch['x']!, undefined, tap), batch['y']!), params, true),
    loss: (params, batch) => tf.tidy(() => crossEntropyPerMember(mlpForward(c, params, batch['x']!), batch['y']!)),
    accuracy: (params, batch) => tf.tidy(() => accuracyPerMember(mlpForward(c, params, batch['x']!), batch['y']!)),
    batches: (split, seeds) => imageBatches(dataset(), split, seeds, c.batchSize),
    normalizeLoss: classificationNormalizer(NUM_CLASSES),
  };
}

/** The loss and gradients on the native kernel (src/kernels/mlpTask.ts), or null when it is not in use. */
function nativeLossAndGrads(c: MlpConfig, params: Params, batch: Batch): { losses: tf.Tensor1D; grads: Params } | null {
  const native = cpuKernels(tf.getBackend());
  const x = batch['x']!;
  if (native === null || x.rank !== 3) return null;
  const ls = layers(c);
  const readout = ls[ls.length - 1]!;
  const r = mlpLossAndGrads(
    native,
    {
      dims: [ls[0]!.fanIn, ...ls.map((l) => l.fanOut)],
      activation: c.activation,
      readoutMult: c.parametrization === 'mup' ? 1 / readout.fanIn : 1,
    },
    ls.map((l) => params[`${l.name}/kernel`]!),
    ls.map((l) => params[`${l.name}/bias`]!),
    x,
    batch['y']!,
  );
  const grads: Params = {};
  ls.forEach((l, i) => {
    grads[`${l.name}/kernel`] = r.weightGrads[i]!;
    grads[`${l.name}/bias`] = r.biasGrads[i]!;
  });
  return { losses: r.losses, grads };
}
