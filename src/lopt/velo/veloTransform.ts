// VeLO's step as a gradient transformation: HyperV2.opt_fn's update (hyper_v2.py), for every
// tensor and population member. Order, as the reference: loss buffer ← loss; gradients clipped;
// LSTM inputs from the old parameters, clipped gradients and *old* accumulators; LSTM; then the
// accumulators step and each tensor's interpolated MLP reads the new ones. On the synchronous CPU
// backends (wasm, cpu) the per-parameter part runs on the native fused kernel (veloNative.ts); the
// tfjs-ops path below is its reference (and runs on GPU backends and with LOPT_KERNELS=ops).
import * as tf from '@tensorflow/tfjs-core';
import type { GradientTransformation, UpdateContext } from '../../optim/transform.js';
import type { Params } from '../../tree/params.js';
import { cpuKernels } from '../../kernels/registry.js';
import { initAccumulators, memberShape, normalizedFeatures, tensorFeatures, type Accumulators, type Decays } from '../features.js';
import type { LearnedOptimizerOptions } from '../types.js';
import { ADAFACTOR_DECAYS, EXP_MULT, GRAD_CLIP, MAX_TRAINING_STEPS, MOMENTUM_DECAYS, RMS_DECAYS, STEP_MULT, type ResolvedVeloConfig } from './config.js';
import { initLossBuffer, lossBufferDecays, lossFeatures, updateLossBuffer, type LossBuffer } from './lossBuffer.js';
import { initialLstmState, rnnForward, type LstmState } from './rnn.js';
import { fractionTrainedFeatures, lstmInputs } from './tensorSummary.js';
import { applyTensorMlp, interpolateMlps } from './tensorMlp.js';
import { veloLstmInputs, veloNativeStep } from './veloNative.js';

/**
 * VeLO's inner state. `count` (updates so far) and `horizon` (the planned run length) are one
 * number, or one per member with `memberSteps`; the loss buffer and LSTM state carry the member axis.
 */
export type VeloState = {
  count: number | number[];
  horizon: number | number[];
  acc: Record<string, Accumulators>;
  loss: LossBuffer;
  lstm: LstmState;
};

function checkHorizon(total: unknown): number {
  if (typeof total !== 'number' || !Number.isInteger(total) || total < 1) {
    throw new Error(
      `velo needs the planned number of steps: totalSteps (an integer ≥ 1; got ${String(total)}), ` +
        'e.g. optimizer(theta, { totalSteps: 5000 }) or loaded.asTfjsOptimizer({ totalSteps: 5000 })',
    );
  }
  if (total > MAX_TRAINING_STEPS) {
    throw new Error(
      `velo: totalSteps ${total} is beyond the ${MAX_TRAINING_STEPS.toLocaleString('en-US')} steps VeLO was meta-trained for; ` +
        `accumulate gradients over ${Math.ceil(total / MAX_TRAINING_STEPS)} batches per step (as the released wrapper does) and plan ` +
        `${Math.ceil(total / Math.ceil(total / MAX_TRAINING_STEPS))} steps`,
    );
  }
  return total;
}

/** The loss as one value per member [P]: a number, a scalar, or (with a population) a [P] tensor. */
function memberLosses(loss: UpdateContext['loss'], P: number, population: number | undefined): tf.Tensor1D {
  if (loss === undefined) {
    throw new Error(
      'velo reads the training loss at every step: pass it with the gradients, ' +
        'optimizer.update(grads, state, params, { loss }) or optimizer.step(params, grads, state, { loss }) ' +
        '(model.fit through asTfjsOptimizer passes it by itself)',
    );
  }
  if (typeof loss === 'number') return tf.fill([P], loss) as tf.Tensor1D;
  if (!(loss instanceof tf.Tensor)) throw new Error(`velo: the loss must be a number or a tensor; got ${typeof loss}`);
  if (loss.size === P) return tf.cast(tf.reshape(loss, [P]), 'float32') as tf.Tensor1D;
  throw new Error(
    `velo: the loss has shape [${loss.shape.join(',')}]; expected ${population === undefined ? 'a scalar' : `one loss per member, [${population}]`}`,
  );
}

const isSyncBackend = (): boolean => tf.getBackend() === 'wasm' || tf.getBackend() === 'cpu';

/**
 * The gradient clipped to ±GRAD_CLIP with a NaN kept NaN (as jnp.clip; wasm's clip turns it into
 * −GRAD_CLIP), so that a NaN gradient is caught as non-finite. An infinite one is clipped.
 */
function clipGradient(g: tf.Tensor): tf.Tensor {
  return tf.where(tf.isNaN(g), g, tf.clipByValue(g, -GRAD_CLIP, GRAD_CLIP));
}

export function veloTransform(config: ResolvedVeloConfig, theta: Params, options: LearnedOptimizerOptions): GradientTransformation<VeloState> {
  const population = options.population;
  const P = population ?? 1;
  if (options.memberSteps && population === undefined) throw new Error('velo: memberSteps needs a population (one step count per member)');
  const withP = (t: tf.Tensor): tf.Tensor => (population === undefined ? tf.expandDims(t, 0) : t);
  const shapeOf = (t: tf.Tensor): number[] => (population === undefined ? t.shape.slice() : t.shape.slice(1));
  const decays = (): Decays => ({
    momentum: tf.tile(tf.tensor2d([MOMENTUM_DECAYS.slice()]), [P, 1]) as tf.Tensor2D,
    rms: tf.tile(tf.tensor2d([RMS_DECAYS.slice()]), [P, 1]) as tf.Tensor2D,
    adafactor: tf.tile(tf.tensor2d([ADAFACTOR_DECAYS.slice()]), [P, 1]) as tf.Tensor2D,
  });

  return {
    init(params) {
      const total = checkHorizon(options.totalSteps);
      const acc: Record<string, Accumulators> = {};
      for (const [name, p] of Object.entries(params)) {
        if (population !== undefined && p.shape[0] !== population) {
          throw new Error(`velo: parameter '${name}' has shape [${p.shape.join(',')}]; with population ${population} its first dim must be ${population}`);
        }
        acc[name] = initAccumulators('velo', MOMENTUM_DECAYS.length, ADAFACTOR_DECAYS.length, population === undefined ? [1, ...p.shape] : p.shape);
      }
      const T = Object.keys(params).length;
      const thetaState = tf.tidy(() => {
        const t: Params = {};
        for (const name of ['lstm_init_state/hidden', 'lstm_init_state/cell']) t[name] = withP(theta[name]!);
        return initialLstmState(t, T);
      });
      return {
        count: options.memberSteps ? new Array<number>(P).fill(0) : 0,
        horizon: options.memberSteps ? new Array<number>(P).fill(total) : total,
        acc,
        loss: initLossBuffer(P),
        lstm: thetaState,
      };
    },

    update(grads, state, params, context) {
      const counts = Array.isArray(state.count) ? state.count : new Array<number>(P).fill(state.count);
      const horizons = Array.isArray(state.horizon) ? state.horizon : new Array<number>(P).fill(state.horizon);
      if (counts.length !== P || horizons.length !== P) throw new Error(`velo: the state holds ${counts.length} step counts for a population of ${P}`);
      const names = Object.keys(grads);
      if (state.lstm.hidden.shape[1] !== names.length) {
        throw new Error(`velo: the state's LSTM has ${state.lstm.hidden.shape[1]} rows for ${names.length} tensors`);
      }
      const thetaP: Params = {};
      for (const [name, t] of Object.entries(theta)) thetaP[name] = withP(t);

      // Loss features, from the buffer after this step's loss (a non-finite loss leaves a member's buffer as it was).
      const loss = memberLosses(context?.loss, P, population);
      const bufferDecays = horizons.map((h) => lossBufferDecays(config.useBuggedLossFeatures ? 10 : h));
      const updated = updateLossBuffer(state.loss, loss, bufferDecays, counts);
      const lossOk = tf.reshape(tf.isFinite(loss), [P, 1]);
      const buffer: LossBuffer = {
        means: tf.where(lossOk, updated.means, state.loss.means),
        runningMin: tf.where(lossOk, updated.runningMin, state.loss.runningMin),
      };
      const shared = tf.concat(
        [
          tf.tensor2d(counts.map((c, k) => fractionTrainedFeatures(c, horizons[k]!))),
          lossFeatures(
            buffer,
            bufferDecays,
            counts.map((c) => c + 1),
          ),
        ],
        1,
      ) as tf.Tensor2D;

      // Per-tensor LSTM over the old parameters and accumulators (its inputs from the kernel's moments on the native path).
      const native = cpuKernels(tf.getBackend());
      const p3: tf.Tensor3D[] = [];
      let lstmIn: tf.Tensor3D;
      let paramScale: Float64Array | null = null;
      if (native !== null) {
        const tensors = names.map((name) => ({ shape: shapeOf(params[name]!), param: params[name]!, m: state.acc[name]!['m']!, v: state.acc[name]!['v']! }));
        ({ x: lstmIn, paramScale } = veloLstmInputs(native, P, tensors, shared));
      } else {
        const rows = names.map((name) => {
          const p = withP(params[name]!);
          const pFlat = tf.reshape(p, [P, 1, p.size / P]) as tf.Tensor3D;
          p3.push(pFlat);
          const acc = state.acc[name]!;
          return lstmInputs(pFlat, acc['m'] as tf.Tensor3D, acc['v'] as tf.Tensor3D, shapeOf(params[name]!), shared);
        });
        lstmIn = tf.stack(rows, 1) as tf.Tensor3D;
      }
      const rnn = rnnForward(thetaP, lstmIn, state.lstm);
      const mlps = interpolateMlps(thetaP, rnn.controls);
      const lstm = config.useBuggedNextLstmState ? state.lstm : rnn.state;
      const count = Array.isArray(state.count) ? state.count.map((c) => c + 1) : state.count + 1;
      const warn = (name: string, member: number) =>
        options.onWarning!({ kind: 'non-finite-gradient', parameter: population === undefined ? name : `${name}[member ${member}]`, step: counts[member]! });

      if (native !== null && paramScale !== null) {
        const r = veloNativeStep(
          native,
          P,
          mlps,
          rnn.lrMult,
          paramScale,
          names.map((name) => ({
            shape: memberShape(population === undefined ? [1, ...params[name]!.shape] : params[name]!.shape),
            grad: grads[name]!,
            param: params[name]!,
            acc: state.acc[name]!,
          })),
        );
        const updates: Params = {};
        const acc: Record<string, Accumulators> = {};
        names.forEach((name, t) => {
          updates[name] = r.updates[t]!;
          acc[name] = r.acc[t]!;
          if (options.onWarning) for (let k = 0; k < P; k++) if (r.finite[t * P + k] === 0) warn(name, k);
        });
        return { updates, state: { count, horizon: state.horizon, acc, loss: buffer, lstm } };
      }

      // Each tensor: accumulators ← clipped gradient; its MLP on the new features; the step.
      const d = decays();
      const results = names.map((name, t) => {
        const f = tensorFeatures('velo', clipGradient(withP(grads[name]!)), withP(params[name]!), state.acc[name]!, d);
        const { direction, magnitude } = applyTensorMlp(normalizedFeatures(f), mlps, t);
        const paramScale = tf.sqrt(tf.add(tf.mean(tf.square(p3[t]!), 2), 1e-9));
        const lrMult = tf.slice(rnn.lrMult, [0, t], [P, 1]);
        const step = tf.mul(tf.mul(direction, tf.exp(tf.mul(magnitude, EXP_MULT))), tf.mul(tf.mul(lrMult, paramScale), STEP_MULT));
        return { acc: f.acc, update: tf.neg(step), finite: tf.isFinite(f.gradMeanSquare) };
      });

      const mode = options.onWarning || isSyncBackend() ? 'read' : 'mask';
      const flags = mode === 'read' && results.length > 0 ? (tf.concat(results.map((r) => r.finite)).dataSync() as Uint8Array) : null;
      const updates: Params = {};
      const acc: Record<string, Accumulators> = {};
      names.forEach((name, i) => {
        const r = results[i]!;
        const memberFlags = flags === null ? null : Array.from(flags.subarray(i * P, (i + 1) * P));
        if (memberFlags !== null && options.onWarning) {
          memberFlags.forEach((ok, k) => {
            if (ok === 0) warn(name, k);
          });
        }
        if (memberFlags !== null && memberFlags.every((ok) => ok !== 0)) {
          updates[name] = tf.reshape(r.update, params[name]!.shape);
          acc[name] = r.acc;
          return;
        }
        // lopt's policy for every learned optimizer (the reference has none): a member whose
        // gradient is not finite gets a zero update and keeps its accumulators.
        const old = state.acc[name]!;
        const kept: Accumulators = {};
        for (const [key, a] of Object.entries(r.acc)) {
          kept[key] = tf.where(tf.reshape(r.finite, [P, ...new Array<number>(a.rank - 1).fill(1)]), a, old[key]!);
        }
        acc[name] = kept;
        updates[name] = tf.reshape(tf.where(tf.reshape(r.finite, [P, 1]), r.update, tf.zerosLike(r.update)), params[name]!.shape);
      });
      return { updates, state: { count, horizon: state.horizon, acc, loss: buffer, lstm } };
    },
  };
}
