// The gradient transformation shared by the per-parameter MLP learned optimizers: accumulators →
// features → MLP → step, for every tensor and every population member in one pass.
import * as tf from '@tensorflow/tfjs-core';
import { mupScaleOf, type MupScale } from '../optim/transforms/scaleByMup.js';
import type { GradientTransformation } from '../optim/transform.js';
import type { Params } from '../tree/params.js';
import {
  channelCount,
  initAccumulators,
  tensorFeatures,
  timeFeatures,
  type Accumulators,
  type Decays,
  type FeatureKind,
} from './features.js';
import { firstLayer, mlpOutputs, mlpOutputsNormalized, type FirstLayer, type MlpWeights } from './perParamMlp.js';
import type { LearnedOptimizerOptions } from './types.js';

/** What differs between architectures. */
export interface ArchRuntime {
  name: string;
  kind: FeatureKind;
  momenta: number;
  adafactorDecays: number;
  stepMult: number;
  expMult: number;
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
  [key: string]: number | number[] | Record<string, Accumulators>;
  count: number | number[];
  acc: Record<string, Accumulators>;
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
      return { count: options.memberSteps ? new Array<number>(P).fill(0) : 0, acc };
    },

    update(grads, state, params) {
      const counts = state.count;
      if (Array.isArray(counts) && counts.length !== P) {
        throw new Error(`${rt.name}: state holds ${counts.length} member step counts for a population of ${P}`);
      }
      const stepOf = (member: number): number => (Array.isArray(counts) ? counts[member]! : counts);
      const thetaP: Params = {};
      for (const [name, t] of Object.entries(theta)) thetaP[name] = withP(t);
      const decays = rt.decays(thetaP);
      const weights = rt.mlp(thetaP);
      const first = firstLayer(
        weights,
        Array.isArray(counts) ? counts.map((c) => timeFeatures(c)) : timeFeatures(counts),
        channels,
      );
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
      return { updates, state: { count, acc } };
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
  const x = tf.concat(features.map((f) => tf.mul(f.raw, tf.expandDims(f.scale, 2))), 2) as tf.Tensor3D;
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
