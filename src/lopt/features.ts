// Per-tensor accumulators and input features of the per-parameter learned optimizers
// (learned_optimization's MLPLOpt and AdafacMLPLOpt; DESIGN.md "Learned optimizers").
//
// Layout: every tensor is handled as [P, C, N] (population, channel, flattened parameter), so a
// channel is one contiguous run of N floats: building the features is a concat of large blocks
// along axis 1, and per-channel statistics are reductions over the last axis. The first MLP layer
// reads it transposed (perParamMlp.ts).
import * as tf from '@tensorflow/tfjs-core';

/** The 11 time scales τ of the step embedding tanh(t/τ − 1). */
export const TIME_SCALES = [1, 3, 10, 30, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5] as const;
export const TIME_FEATURES = TIME_SCALES.length;

/**
 * Where the fraction-of-training embedding tanh(10·(f − c)) is centred: VeLO's
 * `_fractional_tanh_embed` (learned_optimization/research/general_lopt/hyper_v2.py).
 */
export const FRACTION_POINTS = [0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1] as const;
export const FRACTION_FEATURES = FRACTION_POINTS.length;

/** tanh(10·(step/totalSteps − c)) for every c: how much of the planned run is done (host float64). */
export function fractionFeatures(step: number, totalSteps: number): number[] {
  const f = step / totalSteps;
  return FRACTION_POINTS.map((c) => Math.tanh(10 * (f - c)));
}

/** ε of the per-channel second-moment normalizer x·rsqrt(ε + mean(x²)). */
export const NORMALIZER_EPS = 1e-5;
/** ε added to g² in the Adafactor accumulators. */
export const ADAFACTOR_EPS = 1e-30;

/** tanh(t/τ − 1) for every τ, t the step count before the update (host float64). */
export function timeFeatures(step: number): number[] {
  return TIME_SCALES.map((tau) => Math.tanh(step / tau - 1));
}

/**
 * The two factored dims `[d1, d0]` (d0 the largest, d1 the next) as the last two indices of a
 * *stable* argsort of the shape (ties keep the lower index first), or null below rank 2.
 * numpy's default argsort in the reference is not guaranteed stable; DESIGN.md pins it.
 */
export function factoredDims(shape: readonly number[]): [number, number] | null {
  if (shape.length < 2) return null;
  const order = shape.map((_, i) => i).sort((a, b) => shape[a]! - shape[b]! || a - b);
  return [order[order.length - 2]!, order[order.length - 1]!];
}

/**
 * `shape` with every run of dims other than d1 and d0 multiplied into one dim, and where d1, d0
 * land: the same row/col statistics over at most 5 dims.
 */
export function mergedShape(shape: readonly number[], [d1, d0]: [number, number]): { shape: number[]; d1: number; d0: number } {
  const out: number[] = [];
  let m1 = -1;
  let m0 = -1;
  let run = false;
  shape.forEach((d, i) => {
    if (i === d1 || i === d0) {
      if (i === d1) m1 = out.length;
      else m0 = out.length;
      out.push(d);
      run = false;
    } else if (run) {
      out[out.length - 1]! *= d;
    } else {
      out.push(d);
      run = true;
    }
  });
  return { shape: out, d1: m1, d0: m0 };
}

/**
 * Which accumulators/features an architecture uses: MLPLOpt's momenta, μLO's Adafactor set, or
 * VeLO's (HyperV2 `_ff_mod`): μLO's accumulators with 30 channels in VeLO's order.
 */
export type FeatureKind = 'momentum' | 'adafactor' | 'velo';

/** Channels before the time features: MLPLOpt g, p, 6 momenta; μLO the 28 of DESIGN.md; VeLO 30. */
export function channelCount(kind: FeatureKind, momenta: number): number {
  return kind === 'momentum' ? 2 + momenta : kind === 'velo' ? 30 : 28;
}

/**
 * One tensor's accumulators (no population axis in the names, always present in the shapes):
 * m [P, K, N]; v [P, 1, N]; factored: row/col [P, K, ...shape] with the reduced dim kept as 1;
 * otherwise full [P, K, N].
 */
export interface Accumulators {
  [key: string]: tf.Tensor;
}

/** Decays per member, already transformed (and clipped where the reference clips): [P, K]. */
export interface Decays {
  momentum: tf.Tensor2D;
  rms?: tf.Tensor2D;
  adafactor?: tf.Tensor2D;
}

/** A scalar parameter is handled as shape [1], as the reference does. */
export function memberShape(shapeWithPopulation: readonly number[]): number[] {
  const s = shapeWithPopulation.slice(1);
  return s.length === 0 ? [1] : s;
}

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Zero accumulators for a parameter of shape [P, ...shape]. */
export function initAccumulators(kind: FeatureKind, momenta: number, adafactorDecays: number, shapeWithPopulation: readonly number[]): Accumulators {
  const P = shapeWithPopulation[0]!;
  const s = memberShape(shapeWithPopulation);
  const N = prod(s);
  const acc: Accumulators = { m: tf.zeros([P, momenta, N]) };
  if (kind === 'momentum') return acc;
  acc['v'] = tf.zeros([P, 1, N]);
  const dims = factoredDims(s);
  if (dims === null) {
    acc['full'] = tf.zeros([P, adafactorDecays, N]);
  } else {
    const [d1, d0] = dims;
    acc['row'] = tf.zeros([P, adafactorDecays, ...s.map((d, i) => (i === d0 ? 1 : d))]);
    acc['col'] = tf.zeros([P, adafactorDecays, ...s.map((d, i) => (i === d1 ? 1 : d))]);
  }
  return acc;
}

/** β·old + (1 − β)·x with β broadcast per member and channel. */
function ema(old: tf.Tensor, x: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(old, beta), tf.mul(x, tf.sub(1, beta)));
}

export interface TensorFeatures {
  /** Updated accumulators (same keys and shapes as the input ones). */
  acc: Accumulators;
  /** Un-normalized channels [P, C, N]. */
  raw: tf.Tensor3D;
  /** Per member and channel rsqrt(ε + mean(x²)) [P, C]: the normalized features are raw·scale. */
  scale: tf.Tensor2D;
  /** mean(g²) per member [P]: not finite iff the member's gradient is not (or its square overflows). */
  gradMeanSquare: tf.Tensor1D;
}

/**
 * Updates one tensor's accumulators with gradient g [P, ...shape] and builds its channels.
 * Must run inside tf.tidy.
 */
export function tensorFeatures(kind: FeatureKind, g: tf.Tensor, p: tf.Tensor, acc: Accumulators, decays: Decays): TensorFeatures {
  const P = g.shape[0]!;
  const s = memberShape(g.shape);
  const N = prod(s);
  const g3 = tf.reshape(g, [P, 1, N]);
  const p3 = tf.reshape(p, [P, 1, N]);
  const K = decays.momentum.shape[1]!;
  const m = ema(acc['m']!, g3, tf.reshape(decays.momentum, [P, K, 1]));
  const next: Accumulators = { m };
  let channels: tf.Tensor[];
  if (kind === 'momentum') {
    channels = [g3, p3, m];
  } else {
    const g2 = tf.square(g3);
    const v = ema(acc['v']!, g2, tf.reshape(decays.rms!, [P, 1, 1]));
    next['v'] = v;
    const gsq = tf.add(g2, ADAFACTOR_EPS);
    const Ka = decays.adafactor!.shape[1]!;
    const dims = factoredDims(s);
    let facG: tf.Tensor, rowFeat: tf.Tensor, colFeat: tf.Tensor, rsRow: tf.Tensor, rsCol: tf.Tensor, facMom: tf.Tensor;
    if (dims === null) {
      const full = ema(acc['full']!, gsq, tf.reshape(decays.adafactor!, [P, Ka, 1]));
      next['full'] = full;
      facG = tf.mul(g3, tf.rsqrt(tf.maximum(tf.add(full, 1e-9), 1e-9)));
      rowFeat = full;
      colFeat = full;
      rsRow = tf.rsqrt(tf.add(full, 1e-8));
      rsCol = rsRow;
      // μLO's non-factored branch matches RMSProp here: m·(v_full + 1e-6)^-½; VeLO's is m·v_full^-½.
      facMom = kind === 'velo' ? tf.mul(m, tf.rsqrt(full)) : tf.mul(m, tf.rsqrt(tf.add(full, 1e-6)));
    } else {
      // Computed over the merged shape (runs of dims other than d0/d1 folded into one) with the
      // population and decay axes folded together: at most rank 6, which wasm's XNNPACK kernels
      // need (a rank-5 parameter is rank 7 as [P, K, ...shape] and came out as zeros there).
      const { shape: ms, d1: m1, d0: m0 } = mergedShape(s, dims);
      const rowShape = ms.map((d, i) => (i === m0 ? 1 : d));
      const colShape = ms.map((d, i) => (i === m1 ? 1 : d));
      const nRow = prod(rowShape);
      const nCol = prod(colShape);
      const beta = tf.reshape(decays.adafactor!, [P, Ka, 1]);
      const gsqFull = tf.reshape(gsq, [P, ...ms]);
      const row = ema(tf.reshape(acc['row']!, [P, Ka, nRow]), tf.reshape(tf.mean(gsqFull, 1 + m0, true), [P, 1, nRow]), beta);
      const col = ema(tf.reshape(acc['col']!, [P, Ka, nCol]), tf.reshape(tf.mean(gsqFull, 1 + m1, true), [P, 1, nCol]), beta);
      next['row'] = tf.reshape(row, acc['row']!.shape);
      next['col'] = tf.reshape(col, acc['col']!.shape);
      const rowM = tf.reshape(row, [P * Ka, ...rowShape]);
      const colM = tf.reshape(col, [P * Ka, ...colShape]);
      // The reference normalizes rows by their mean along d1 only (all of them for rank 2).
      const rowColMean = tf.mean(rowM, 1 + m1, true);
      const rowFactor = tf.rsqrt(tf.maximum(tf.div(rowM, tf.add(rowColMean, 1e-9)), 1e-9));
      const colFactor = tf.rsqrt(tf.maximum(colM, 1e-9));
      const both = tf.reshape(tf.mul(rowFactor, colFactor), [P, Ka, N]);
      facG = tf.mul(g3, both);
      facMom = tf.mul(m, both);
      const fullShape = [P * Ka, ...ms];
      // Fast on wasm through the block-copy Tile kernel (src/backend/wasmFastTile.ts).
      const spread = (x: tf.Tensor) => tf.reshape(tf.broadcastTo(x, fullShape), [P, Ka, N]);
      rowFeat = spread(rowM);
      colFeat = spread(colM);
      rsRow = spread(tf.rsqrt(tf.add(rowM, 1e-8)));
      rsCol = spread(tf.rsqrt(tf.add(colM, 1e-8)));
    }
    const rsV = tf.rsqrt(tf.add(v, 1e-6));
    channels =
      kind === 'velo'
        ? // HyperV2's 14 input groups: g, clip(g), p, m, rms, m/√rms, 1/√rms, fac_g, g/√rms, row, col, 1/√row, 1/√col, fac_mom.
          [g3, tf.clipByValue(g3, -0.1, 0.1), p3, m, v, tf.mul(m, rsV), rsV, facG, tf.mul(g3, rsV), rowFeat, colFeat, rsRow, rsCol, facMom]
        : [g3, p3, m, v, tf.mul(m, rsV), rsV, facG, rowFeat, colFeat, rsRow, rsCol, facMom];
  }
  const raw = tf.concat(channels, 1) as tf.Tensor3D;
  const meanSquare = tf.mean(tf.square(raw), 2) as tf.Tensor2D;
  const scale = tf.rsqrt(tf.add(meanSquare, NORMALIZER_EPS)) as tf.Tensor2D;
  const gradMeanSquare = tf.reshape(tf.slice(meanSquare, [0, 0], [P, 1]), [P]) as tf.Tensor1D;
  return { acc: next, raw, scale, gradMeanSquare };
}

/** The normalized channels raw·scale [P, C, N] (what the MLP sees; the fast path folds the scale into w0). */
export function normalizedFeatures(f: Pick<TensorFeatures, 'raw' | 'scale'>): tf.Tensor3D {
  return tf.mul(f.raw, tf.expandDims(f.scale, 2)) as tf.Tensor3D;
}
