import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import type { Rng } from '../../src/random/rng.js';
import { SPLITS, type Batch, type BatchStream, type Split, type Task } from '../types.js';
import { accuracyPerMember, classificationNormalizer, crossEntropyPerMember } from '../normalize.js';
import { batchRng, fillNormal, initRng, instanceRng, lazy, perMember } from './seeded.js';
import { parseCanonical, requireFields, requireInt, requireSeeds } from './validation.js';

const TASK = 'logreg';

export interface LogisticRegressionConfig {
  /** Input dimension d. */
  dim: number;
  /** C ≥ 2 classes (softmax cross-entropy; binary is C = 2). */
  classes: number;
  batchSize: number;
  /** Points in the synthetic set, all splits together (default 4096, at least 10). */
  numPoints?: number;
}

export const LOGREG_DEFAULT_POINTS = 4096;
/** Teacher logits are x·W* with W* ~ N(0, (3/√d)²) (logit std ≈ 3), plus N(0, 0.5²) label noise. */
const TEACHER_SCALE = 3;
const LABEL_NOISE = 0.5;

export interface LogisticRegressionInstance {
  /** Teacher weights W*, row-major [d, C]. */
  teacher: Float32Array;
  /** Inputs, row-major [n, d], x ~ N(0, I). */
  x: Float32Array;
  /** Labels argmax_c (x·W* + noise)_c, [n]. */
  y: Int32Array;
  /** Contiguous ranges of the set: train the first n − 3⌊n/10⌋ points, then ⌊n/10⌋ each for inner-valid, outer-valid, test. */
  splits: Record<Split, { start: number; count: number }>;
}

export interface LogisticRegressionTask extends Task {
  instance(): LogisticRegressionInstance;
}

function checked(config: LogisticRegressionConfig): Required<LogisticRegressionConfig> {
  requireFields(TASK, config, ['dim', 'classes', 'batchSize', 'numPoints']);
  return {
    dim: requireInt(TASK, 'dim', config.dim, 1),
    classes: requireInt(TASK, 'classes', config.classes, 2),
    batchSize: requireInt(TASK, 'batchSize', config.batchSize, 1),
    numPoints: config.numPoints === undefined ? LOGREG_DEFAULT_POINTS : requireInt(TASK, 'numPoints', config.numPoints, 10),
  };
}

/** `logreg-d<dim>-c<classes>-b<batchSize>`, with `-n<numPoints>` when not the default 4096. */
export function logisticRegressionName(config: LogisticRegressionConfig): string {
  const c = checked(config);
  const points = c.numPoints === LOGREG_DEFAULT_POINTS ? '' : `-n${c.numPoints}`;
  return `logreg-d${c.dim}-c${c.classes}-b${c.batchSize}${points}`;
}

export function parseLogisticRegressionName(name: string): Required<LogisticRegressionConfig> {
  return parseCanonical(
    name,
    TASK,
    'logreg-d<dim>-c<classes>-b<batchSize>[-n<numPoints>], e.g. logreg-d20-c2-b64 (dim, batchSize >= 1; classes >= 2; numPoints >= 10, default 4096)',
    /^logreg-d(\d+)-c(\d+)-b(\d+)(?:-n(\d+))?$/,
    ([d, c, b, n]) => checked({ dim: Number(d), classes: Number(c), batchSize: Number(b), numPoints: n === '' ? undefined : Number(n) }),
    logisticRegressionName,
  );
}

function makeInstance(cfg: Required<LogisticRegressionConfig>, rng: Rng): LogisticRegressionInstance {
  const { dim: d, classes: c, numPoints: n } = cfg;
  const teacher = new Float32Array(d * c);
  fillNormal(rng.fork('teacher'), teacher, TEACHER_SCALE / Math.sqrt(d));
  const x = new Float32Array(n * d);
  fillNormal(rng.fork('x'), x);
  const y = new Int32Array(n);
  const noise = rng.fork('label-noise');
  for (let k = 0; k < n; k++) {
    let best = -Infinity;
    for (let j = 0; j < c; j++) {
      let z = LABEL_NOISE * noise.normal();
      for (let i = 0; i < d; i++) z += x[k * d + i]! * teacher[i * c + j]!;
      if (z > best) {
        best = z;
        y[k] = j;
      }
    }
  }
  // The points are i.i.d., so contiguous ranges are already random splits.
  const held = Math.floor(n / 10);
  const train = n - 3 * held;
  const splits = {
    train: { start: 0, count: train },
    'inner-valid': { start: train, count: held },
    'outer-valid': { start: train + held, count: held },
    test: { start: train + 2 * held, count: held },
  };
  return { teacher, x, y, splits };
}

/** Endless indices into one split: a fresh seeded permutation every epoch. */
function indexStream(rng: Rng, start: number, count: number): () => number {
  const order = Int32Array.from({ length: count }, (_, i) => start + i);
  let cursor = count;
  return () => {
    if (cursor === count) {
      rng.shuffle(order);
      cursor = 0;
    }
    return order[cursor++]!;
  };
}

/**
 * Softmax regression on a fixed synthetic, nearly linearly separable set (a noisy linear teacher,
 * fixed by the config). Members: w [P, d, C] ~ N(0, 1/d), b [P, C] = 0; batches x [P, B, d], y [P, B]
 * int32, each member's minibatches drawn by its own seeded per-epoch permutation of the split.
 * Normalizer (classification): clip(l, 0, 1.5·ln C), NaN/Inf → 1.5·ln C.
 */
export function logisticRegressionTask(config: LogisticRegressionConfig): LogisticRegressionTask {
  const cfg = checked(config);
  const name = logisticRegressionName(cfg);
  const { dim: d, classes: c, batchSize: bs } = cfg;
  const instance = lazy(() => makeInstance(cfg, instanceRng(name)));

  return {
    meta: {
      name,
      family: TASK,
      parametrization: 'sp',
      dataset: 'synthetic',
      width: d,
      depth: null,
      batchSize: bs,
      paramCount: d * c + c,
    },
    shapes: { w: [d, c], b: [c] },
    mupScale: { w: 1, b: 1 },
    instance,
    init(seeds: readonly number[]): Params {
      requireSeeds(name, seeds);
      const w = perMember(seeds.map(initRng), d * c, (rng, out) => fillNormal(rng, out, 1 / Math.sqrt(d)));
      return { w: tf.tensor3d(w, [seeds.length, d, c]), b: tf.zeros([seeds.length, c]) };
    },
    loss(params: Params, batch: Batch): tf.Tensor1D {
      const { w, b } = params;
      const { x, y } = batch;
      if (w === undefined || b === undefined) throw new Error(`${name}: params need w and b`);
      if (x === undefined || y === undefined) throw new Error(`${name}: the batch needs x and y`);
      return tf.tidy(() => {
        const logits = tf.add(tf.matMul(x, w), tf.expandDims(b, 1));
        return crossEntropyPerMember(logits, y);
      });
    },
    accuracy(params: Params, batch: Batch): tf.Tensor1D {
      return tf.tidy(() => accuracyPerMember(tf.add(tf.matMul(batch['x']!, params['w']!), tf.expandDims(params['b']!, 1)), batch['y']!));
    },
    batches(split: Split, seeds: readonly number[]): BatchStream {
      requireSeeds(name, seeds);
      if (!SPLITS.includes(split)) throw new Error(`${name}: unknown split '${String(split)}'; expected one of ${SPLITS.join(', ')}`);
      const data = instance();
      const range = data.splits[split];
      const streams = seeds.map((s) => indexStream(batchRng(s, split), range.start, range.count));
      return {
        next: () => {
          const p = seeds.length;
          const xs = new Float32Array(p * bs * d);
          const ys = new Int32Array(p * bs);
          streams.forEach((take, m) => {
            for (let k = 0; k < bs; k++) {
              const idx = take();
              ys[m * bs + k] = data.y[idx]!;
              xs.set(data.x.subarray(idx * d, (idx + 1) * d), (m * bs + k) * d);
            }
          });
          return { x: tf.tensor3d(xs, [p, bs, d]), y: tf.tensor2d(ys, [p, bs], 'int32') };
        },
      };
    },
    normalizeLoss: classificationNormalizer(c),
  };
}
