// VeLO's per-parameter step on the native fused kernel (src/kernels/native/perParamStep.c, kind
// 'velo'): for every tensor, the clipped gradient → accumulators (in place) → VeLO's 30 channels →
// per-channel normalization → the tensor's own interpolated MLP → the step, in one pass with no
// [P, 30, N] intermediate. Its tfjs-ops twin (the reference it is tested against, and the path on
// GPU backends) is the rest of veloTransform.ts: features.ts's tensorFeatures('velo') +
// tensorMlp.ts's applyTensorMlp.
//
// The per-tensor LSTM's inputs come from moments of each tensor's parameters and old accumulators
// computed on the kernel too (one read of p, m, v; tensorSummary.ts's lstmInputs is their tfjs twin).
//
// Each tensor has its own MLP weights (interpolated from the banks by its LSTM row), so the kernel
// runs once per tensor. VeLO's step lr_mult · param_scale · direction · exp(EXP_MULT · magnitude) ·
// STEP_MULT is the kernel's stepMult · d · exp(expMult · m) with the per-member factor
// s = lr_mult[p, t] · param_scale[p] folded into the direction output (w2[:, 0] and b2[0]: the
// direction is linear in them); the unused third output is dropped.
import * as tf from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../../kernels/registry.js';
import { perParamStep, tensorMoments, type PerParamArch } from '../../kernels/perParamStep.js';
import { factoredDims, type Accumulators } from '../features.js';
import { ADAFACTOR_DECAYS, EXP_MULT, GRAD_CLIP, MOMENTUM_DECAYS, RMS_DECAYS, STEP_MULT, VELO_CHANNELS, VELO_OUTPUTS } from './config.js';
import type { TensorMlps } from './tensorMlp.js';
import { rankOneHot } from './tensorSummary.js';

/** clip(log(1e-8 + |10·v|), −5, 5) / 2: HyperV2's `_clip_log_abs(v, scale=10.)` (tensorSummary.ts). */
function clipLogAbs(v: number): number {
  return Math.min(Math.max(Math.log(1e-8 + Math.abs(10 * v)), -5), 5) / 2;
}

/** Momenta whose spreads the LSTM reads (VeLO's 3). */
const MOMENT_FEATURES = MOMENTUM_DECAYS.length;

export interface VeloLstmTensor {
  /** One member's shape as the parameter has it (a scalar as []). */
  shape: readonly number[];
  /** [P, ...shape] or, without a population, [...shape]. */
  param: tf.Tensor;
  /** The old accumulators (before this step's gradient): m [P, K, N], v [P, 1, N]. */
  m: tf.Tensor;
  v: tf.Tensor;
}

/**
 * The per-tensor LSTM inputs [P, T, 30] (tensorSummary.ts's lstmInputs for every tensor, stacked
 * along axis 1) from the kernel's moments, and each tensor's param_scale = sqrt(mean(p²) + 1e-9)
 * per member [T·P] for the step. `shared` [P, 18]: fraction trained and loss features.
 * normMult = rsqrt(max(mean(p²), 1e-9)); with x̄, Var(x) from the shifted sums:
 * mean_rms = normMult·v̄; var_m_k = normMult²·Var(m_k); var_rms_k = mean((normMult·v − normMult·m̄_k)²)
 * = normMult²·(Var(v) + (v̄ − m̄_k)²) — every term ≥ 0, no cancellation.
 */
export function veloLstmInputs(native: NativeKernels, P: number, tensors: VeloLstmTensor[], shared: tf.Tensor2D): { x: tf.Tensor3D; paramScale: Float64Array } {
  const T = tensors.length;
  const K = MOMENT_FEATURES;
  const own = 1 + 5 + 2 * K;
  const features = new Float32Array(P * T * own);
  const paramScale = new Float64Array(T * P);
  tensors.forEach((tensor, t) => {
    const N = tensor.param.size / P;
    const W = 1 + 3 * (K + 1);
    const mo = tensorMoments(native, P, tensor.param, tensor.m, tensor.v);
    const rank = rankOneHot(tensor.shape);
    for (let p = 0; p < P; p++) {
      const o = mo.subarray(p * W, (p + 1) * W);
      const meanP2 = o[0]! / N;
      paramScale[t * P + p] = Math.sqrt(meanP2 + 1e-9);
      const norm = 1 / Math.sqrt(Math.max(meanP2, 1e-9));
      const stats = (k: number) => {
        const c = o[1 + 3 * k]!;
        const d = o[2 + 3 * k]! / N;
        return { mean: c + d, variance: Math.max(o[3 + 3 * k]! / N - d * d, 0) };
      };
      const v = stats(K);
      const row = features.subarray((p * T + t) * own, (p * T + t + 1) * own);
      row[0] = clipLogAbs(norm * v.mean);
      row.set(rank, 1);
      for (let k = 0; k < K; k++) {
        const m = stats(k);
        row[6 + k] = clipLogAbs(norm * norm * m.variance);
        row[6 + K + k] = clipLogAbs(norm * norm * (v.variance + (v.mean - m.mean) ** 2));
      }
    }
  });
  const x = tf.concat([tf.tile(tf.expandDims(shared, 1), [1, T, 1]), tf.tensor3d(features, [P, T, own])], 2) as tf.Tensor3D;
  return { x, paramScale };
}

export interface VeloNativeTensor {
  /** One member's shape (a scalar as [1]). */
  shape: number[];
  /** The gradient, unclipped (the kernel clips it to ±GRAD_CLIP), and the parameter: [P, ...shape] or, without a population, [...shape]. */
  grad: tf.Tensor;
  param: tf.Tensor;
  acc: Accumulators;
}

export interface VeloNativeResult {
  /** One per tensor, shaped as its gradient. */
  updates: tf.Tensor[];
  acc: Accumulators[];
  /** [T·P]: 0 where a member's gradient of that tensor held a NaN (its update is 0, its accumulators kept). */
  finite: Uint8Array;
}

const NO_GLOBALS = new Float32Array(0);

/** VeLO's fixed decays for P members (the kernel reads them per member). */
function decays(P: number): { momentum: Float32Array; rms: Float32Array; adafactor: Float32Array } {
  const tile = (d: readonly number[]) => Float32Array.from({ length: P * d.length }, (_, i) => d[i % d.length]!);
  return { momentum: tile(MOMENTUM_DECAYS), rms: tile(RMS_DECAYS), adafactor: tile(ADAFACTOR_DECAYS) };
}

/**
 * Every tensor's accumulators and update on the native kernel. `mlps` are the interpolated
 * per-tensor MLPs [P, T, …], `lrMult` [P, T] the LSTM's step multipliers and `paramScale` [T·P]
 * (veloLstmInputs); tensors in the same order. Must run inside tf.tidy (only the returned tensors are kept).
 */
export function veloNativeStep(
  native: NativeKernels,
  P: number,
  mlps: TensorMlps,
  lrMult: tf.Tensor2D,
  paramScale: Float64Array,
  tensors: VeloNativeTensor[],
): VeloNativeResult {
  const T = tensors.length;
  const F = mlps.w1.shape[3];
  const C = VELO_CHANNELS;
  const O = VELO_OUTPUTS;
  // One read-back of everything small the kernel needs: the interpolated weights and lr_mult.
  const parts = [mlps.w0, mlps.b0, mlps.w1, mlps.b1, mlps.w2, mlps.b2, lrMult];
  const host = tf.concat(parts.map((x) => tf.reshape(x, [-1]))).dataSync() as Float32Array;
  const offsets: number[] = [];
  let at = 0;
  for (const x of parts) {
    offsets.push(at);
    at += x.size;
  }
  const [w0At, b0At, w1At, b1At, w2At, b2At, lrAt] = offsets as [number, number, number, number, number, number, number];

  const d = decays(P);
  const arch: PerParamArch = {
    kind: 'velo',
    momenta: MOMENTUM_DECAYS.length,
    adafactorDecays: ADAFACTOR_DECAYS.length,
    channels: C,
    hidden: F,
    stepMult: STEP_MULT,
    expMult: EXP_MULT,
    gradClip: GRAD_CLIP,
  };
  const updates: tf.Tensor[] = [];
  const acc: Accumulators[] = [];
  const finite = new Uint8Array(T * P);
  tensors.forEach((tensor, t) => {
    // Tensor t's weights per member, [P, …], from the [P, T, …] blocks.
    const slice = (base: number, size: number) => {
      const out = new Float32Array(P * size);
      for (let p = 0; p < P; p++) out.set(host.subarray(base + (p * T + t) * size, base + (p * T + t + 1) * size), p * size);
      return out;
    };
    const w2 = new Float32Array(P * F * 2);
    const b2 = new Float32Array(P * 2);
    for (let p = 0; p < P; p++) {
      // lr_mult · param_scale in float32, as the ops path multiplies them.
      const s = Math.fround(host[lrAt + p * T + t]! * Math.fround(paramScale[t * P + p]!));
      for (let f = 0; f < F; f++) {
        const src = w2At + ((p * T + t) * F + f) * O;
        w2[(p * F + f) * 2] = host[src]! * s;
        w2[(p * F + f) * 2 + 1] = host[src + 1]!;
      }
      b2[p * 2] = host[b2At + (p * T + t) * O]! * s;
      b2[p * 2 + 1] = host[b2At + (p * T + t) * O + 1]!;
    }
    const theta = {
      w0: slice(w0At, C * F),
      b0: slice(b0At, F),
      w1: slice(w1At, F * F),
      b1: slice(b1At, F),
      w2,
      b2,
      ...d,
    };
    const r = perParamStep(native, arch, P, theta, NO_GLOBALS, [
      { shape: tensor.shape, factored: factoredDims(tensor.shape), mupScale: 1, grad: tensor.grad, param: tensor.param, acc: tensor.acc },
    ]);
    updates.push(r.updates[0]!);
    acc.push(r.acc[0]!);
    finite.set(r.finite, t * P);
  });
  return { updates, acc, finite };
}
