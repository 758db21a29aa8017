// The gradient transformation shared by the per-parameter MLP learned optimizers: accumulators →
// features → MLP → step, for every tensor and every population member in one pass.
import * as tf from '@tensorflow/tfjs-core';
import { mupScaleOf, type MupScale } from '../optim/transforms/scaleByMup.js';
import type { GradientTransformation, TransformResult } from '../optim/transform.js';
import type { Params } from '../tree/params.js';
import {
  channelCount,
  factoredDims,
  fractionFeatures,
  memberShape,
  initAccumulators,
  tensorFeatures,
  timeFeatures,
  type Accumulators,
  type Decays,
  type FeatureKind,
} from './features.js';
import { firstLayer, mlpOutputs, mlpOutputsNormalized, type FirstLayer, type MlpWeights } from './perParamMlp.js';
import type { LearnedOptimizerOptions } from './types.js';
import { cpuKernels, type NativeKernels } from '../kernels/registry.js';
import { perParamStep, type PerParamArch, type PerParamTheta } from '../kernels/perParamStep.js';

/** What differs between architectures. */
export interface ArchRuntime {
  name: string;
  /** VeLO's features have their own transform (velo/veloTransform.ts). */
  kind: Exclude<FeatureKind, 'velo'>;
  momenta: number;
  adafactorDecays: number;
  stepMult: number;
  expMult: number;
  /** The fraction-of-training features (VeLO's embedding) after the time features: needs totalSteps. */
  fractionFeatures: boolean;
  /** Decays per member from theta (every tensor [P, ...]). */
  decays(theta: Params): Decays;
  /** The MLP weights from theta (every tensor [P, ...]). */
  mlp(theta: Params): MlpWeights;
}

/**
 * How non-finite gradients are detected:
 * 'read': one small dataSync per step of a [tensors·P] flag block; tensors that are all finite
 *   skip the masking, and onWarning is called for the others. Free on the synchronous wasm/cpu
 *   backends; a pipeline stall on asynchronous ones.
 * 'mask': no read-back; every tensor's state and update go through a per-member select
 *   (a few extra passes), and onWarning cannot be called.
 * Default: 'read' when onWarning is given or the backend is synchronous (wasm, cpu), else 'mask'.
 * A gradient counts as non-finite when its mean square is not finite (NaN/Inf, or so large that
 * g² overflows float32 — the second moment would overflow with it).
 */
export type FiniteCheck = 'read' | 'mask';

export interface LearnedTransformOptions extends LearnedOptimizerOptions {
  finiteCheck?: FiniteCheck;
}

/**
 * Inner state: the step count before the next update, and each tensor's accumulators. With
 * `memberSteps` the count is one per population member (meta-training particles run
 * desynchronized and restart their episodes at different steps); otherwise one shared number.
 */
export interface LearnedState {
  /** Also `horizon` (architectures with fraction features): the planned run length, one per member with `memberSteps`. */
  [key: string]: number | number[] | Record<string, Accumulators>;
  count: number | number[];
  acc: Record<string, Accumulators>;
}

function horizonOf(state: LearnedState): number | number[] | undefined {
  return state['horizon'] as number | number[] | undefined;
}

/** Sets every member's planned run length (meta-training: each particle's episode length). */
export function withHorizons<S>(state: S, horizons: number[]): S {
  const s = state as unknown as LearnedState;
  if (s === null || typeof s !== 'object') return state;
  const h = horizonOf(s);
  if (h === undefined) return state;
  if (!Array.isArray(h) || h.length !== horizons.length) {
    throw new Error(`withHorizons: the state holds ${Array.isArray(h) ? h.length : 1} horizons, ${horizons.length} given`);
  }
  return { ...s, horizon: horizons.slice() } as unknown as S;
}

export function learnedTransform(
  rt: ArchRuntime,
  theta: Params,
  population: number | undefined,
  options: LearnedTransformOptions,
): GradientTransformation<LearnedState> {
  const P = population ?? 1;
  if (options.memberSteps && population === undefined) {
    throw new Error(`${rt.name}: memberSteps needs a population (one step count per member)`);
  }
  const withP = (t: tf.Tensor) => (population === undefined ? tf.expandDims(t, 0) : t);
  const memberShapeOf = (t: tf.Tensor) => (population === undefined ? t.shape.slice() : t.shape.slice(1));
  const scaleOf = (name: string, t: tf.Tensor): number =>
    options.mupScale === undefined ? 1 : mupScaleOf(options.mupScale as MupScale, name, memberShapeOf(t));
  const channels = channelCount(rt.kind, rt.momenta);
  const withPShape = (t: tf.Tensor) => (population === undefined ? [1, ...t.shape] : t.shape);
  const nativeArch = (): PerParamArch => ({
    kind: rt.kind,
    momenta: rt.momenta,
    adafactorDecays: rt.adafactorDecays,
    channels,
    hidden: theta['mlp/w1']!.shape[theta['mlp/w1']!.rank - 1]!,
    stepMult: rt.stepMult,
    expMult: rt.expMult,
  });
  // The native path reads theta as host arrays: copied once, again only if a tensor's data changes.
  let hostThetaKey: object[] = [];
  let hostThetaValue: PerParamTheta | null = null;
  const hostTheta = (): PerParamTheta => {
    const key = Object.values(theta).map((t) => t.dataId);
    if (hostThetaValue !== null && key.length === hostThetaKey.length && key.every((k, i) => k === hostThetaKey[i])) return hostThetaValue;
    const parts = tf.tidy(() => {
      const thetaP: Params = {};
      for (const [name, t] of Object.entries(theta)) thetaP[name] = withP(t);
      const w = rt.mlp(thetaP);
      const d = rt.decays(thetaP);
      return [w.w0, w.b0, w.w1, w.b1, w.w2, w.b2, d.momentum, d.rms ?? tf.zeros([0]), d.adafactor ?? tf.zeros([0])];
    });
    const [w0, b0, w1, b1, w2, b2, momentum, rms, adafactor] = parts.map((t) => Float32Array.from(t.dataSync() as Float32Array));
    // withP keeps theta's own tensors at P > 1: dispose only what the tidy made.
    const own = new Set(Object.values(theta));
    tf.dispose(parts.filter((t) => !own.has(t)));
    hostThetaValue = { w0: w0!, b0: b0!, w1: w1!, b1: b1!, w2: w2!, b2: b2!, momentum: momentum!, rms: rms!, adafactor: adafactor! };
    hostThetaKey = key;
    return hostThetaValue;
  };

  /** The same step on the native fused kernel (src/kernels/perParamStep.ts). */
  const nativeUpdate = (
    native: NativeKernels,
    grads: Params,
    state: LearnedState,
    params: Params,
    globals: number[][],
    stepOf: (member: number) => number,
  ): TransformResult<LearnedState> => {
    const names = Object.keys(grads);
    const result = perParamStep(
      native,
      nativeArch(),
      P,
      hostTheta(),
      Float32Array.from(Array.from({ length: P }, (_, k) => globals[globals.length === 1 ? 0 : k]!).flat()),
      names.map((name) => {
        const shape = memberShape(withPShape(params[name]!));
        return {
          shape,
          factored: rt.kind === 'adafactor' ? factoredDims(shape) : null,
          mupScale: scaleOf(name, params[name]!),
          grad: grads[name]!,
          param: params[name]!,
          acc: state.acc[name]!,
        };
      }),
    );
    const updates: Params = {};
    const acc: Record<string, Accumulators> = {};
    names.forEach((name, i) => {
      updates[name] = result.updates[i]!;
      acc[name] = result.acc[i]!;
      if (!options.onWarning) return;
      for (let k = 0; k < P; k++) {
        if (result.finite[i * P + k] !== 0) continue;
        options.onWarning({ kind: 'non-finite-gradient', parameter: population === undefined ? name : `${name}[member ${k}]`, step: stepOf(k) });
      }
    });
    const count = Array.isArray(state.count) ? state.count.map((c) => c + 1) : state.count + 1;
    return { updates, state: { ...state, count, acc } };
  };

  return {
    init(params) {
      const acc: Record<string, Accumulators> = {};
      for (const [name, p] of Object.entries(params)) {
        if (population !== undefined && p.shape[0] !== population) {
          throw new Error(
            `${rt.name}: parameter '${name}' has shape [${p.shape.join(',')}]; with population ${population} its first dim must be ${population}`,
          );
        }
        scaleOf(name, p);
        const shape = population === undefined ? [1, ...p.shape] : p.shape;
        acc[name] = initAccumulators(rt.kind, rt.momenta, rt.adafactorDecays, shape);
      }
      const count = options.memberSteps ? new Array<number>(P).fill(0) : 0;
      if (!rt.fractionFeatures) return { count, acc } as LearnedState;
      const total = options.totalSteps;
      if (total === undefined || !Number.isFinite(total) || total < 1) {
        throw new Error(
          `${rt.name} with fraction features needs the planned number of steps: totalSteps (an integer ≥ 1; got ${String(total)}), ` +
            'e.g. optimizer(theta, { totalSteps: 5000 }) or asTfjsOptimizer({ totalSteps: 5000 })',
        );
      }
      return { count, horizon: options.memberSteps ? new Array<number>(P).fill(total) : total, acc };
    },

    update(grads, state, params) {
      const counts = state.count;
      if (Array.isArray(counts) && counts.length !== P) {
        throw new Error(`${rt.name}: state holds ${counts.length} member step counts for a population of ${P}`);
      }
      const stepOf = (member: number): number => (Array.isArray(counts) ? counts[member]! : counts);
      const horizon = horizonOf(state);
      if (rt.fractionFeatures && horizon === undefined) throw new Error(`${rt.name} with fraction features: the state holds no horizon (totalSteps)`);
      const memberHorizon = (member: number): number => (Array.isArray(horizon) ? horizon[member]! : horizon!);
      // The features every parameter of a member shares: time, and the fraction of the run done.
      const globalRow = (member: number): number[] => {
        const time = timeFeatures(stepOf(member));
        return rt.fractionFeatures ? [...time, ...fractionFeatures(stepOf(member), memberHorizon(member))] : time;
      };
      const globals = Array.isArray(counts) || Array.isArray(horizon) ? Array.from({ length: P }, (_, k) => globalRow(k)) : [globalRow(0)];
      const native = channels <= 64 ? cpuKernels(tf.getBackend()) : null;
      if (native !== null) return nativeUpdate(native, grads, state, params, globals, stepOf);
      const thetaP: Params = {};
      for (const [name, t] of Object.entries(theta)) thetaP[name] = withP(t);
      const decays = rt.decays(thetaP);
      const weights = rt.mlp(thetaP);
      const first = firstLayer(weights, globals, channels);
      const names = Object.keys(grads);
      const features = names.map((name) => tensorFeatures(rt.kind, withP(grads[name]!), withP(params[name]!), state.acc[name]!, decays));
      const outputs = P > 1 && names.length > 1 ? sharedMlp(features, weights, first) : features.map((f) => mlpOutputs(f.raw, f.scale, weights, first));
      const results = names.map((name, i) => {
        const f = features[i]!;
        const { direction, magnitude } = outputs[i]!;
        // step = d·exp(expMult·m)·stepMult; p ← p − step·mupScale.
        const coef = -rt.stepMult * scaleOf(name, params[name]!);
        const u = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, rt.expMult))), coef);
        return { acc: f.acc, update: u, finite: tf.isFinite(f.gradMeanSquare) };
      });

      const mode = options.finiteCheck ?? (options.onWarning || isSyncBackend() ? 'read' : 'mask');
      let flags: Uint8Array | null = null;
      if (mode === 'read' && results.length > 0) {
        flags = tf.concat(results.map((r) => r.finite)).dataSync() as Uint8Array;
      }
      const updates: Params = {};
      const acc: Record<string, Accumulators> = {};
      names.forEach((name, i) => {
        const r = results[i]!;
        const shape = params[name]!.shape;
        const memberFlags = flags === null ? null : Array.from(flags.subarray(i * P, (i + 1) * P));
        const allFinite = memberFlags !== null && memberFlags.every((f) => f !== 0);
        if (memberFlags !== null && !allFinite && options.onWarning) {
          memberFlags.forEach((f, k) => {
            if (f !== 0) return;
            const parameter = population === undefined ? name : `${name}[member ${k}]`;
            options.onWarning!({ kind: 'non-finite-gradient', parameter, step: stepOf(k) });
          });
        }
        if (allFinite) {
          updates[name] = tf.reshape(r.update, shape);
          acc[name] = r.acc;
          return;
        }
        // A non-finite member's update is zero and its accumulators keep their old values.
        const old = state.acc[name]!;
        const kept: Accumulators = {};
        for (const [key, t] of Object.entries(r.acc)) {
          const cond = tf.reshape(r.finite, [P, ...new Array<number>(t.rank - 1).fill(1)]);
          kept[key] = tf.where(cond, t, old[key]!);
        }
        acc[name] = kept;
        const u = tf.where(tf.reshape(r.finite, [P, 1]), r.update, tf.zerosLike(r.update));
        updates[name] = tf.reshape(u, shape);
      });
      // The counter advances on a skipped step too: the time features track the position in the run.
      const count = Array.isArray(counts) ? counts.map((c) => c + 1) : counts + 1;
      return { updates, state: { ...state, count, acc } };
    },
  };
}

/**
 * One MLP pass over every tensor of a population: the normalized features of all tensors side by
 * side [P, C, ΣN], then split back. Rows are independent in the MLP, so a tensor with NaN features
 * affects only its own rows.
 */
function sharedMlp(
  features: { raw: tf.Tensor3D; scale: tf.Tensor2D }[],
  weights: MlpWeights,
  first: FirstLayer,
): { direction: tf.Tensor2D; magnitude: tf.Tensor2D }[] {
  const x = tf.concat(
    features.map((f) => tf.mul(f.raw, tf.expandDims(f.scale, 2))),
    2,
  ) as tf.Tensor3D;
  const { direction, magnitude } = mlpOutputsNormalized(x, weights, first);
  const P = x.shape[0];
  let offset = 0;
  return features.map((f) => {
    const n = f.raw.shape[2];
    const part = (t: tf.Tensor2D) => tf.slice(t, [0, offset], [P, n]) as tf.Tensor2D;
    const out = { direction: part(direction), magnitude: part(magnitude) };
    offset += n;
    return out;
  });
}

function isSyncBackend(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}
