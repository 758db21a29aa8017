// VeLO against a float64 re-implementation of learned_optimization's HyperV2 written from the
// upstream source (test/helpers/veloReference.ts, which imports nothing from src/): loss features,
// per-tensor LSTM inputs, controls, lr_mult, the per-parameter channels, the MLP outputs and the
// update, over several steps, on every kind of tensor; and one step at the released sizes.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { tensorFeatures, type Decays } from '../src/lopt/features.js';
import { velo } from '../src/lopt/velo/velo.js';
import { lossBufferDecays, initLossBuffer, lossFeatures, updateLossBuffer } from '../src/lopt/velo/lossBuffer.js';
import { rnnForward } from '../src/lopt/velo/rnn.js';
import { lstmInputs, fractionTrainedFeatures } from '../src/lopt/velo/tensorSummary.js';
import { applyTensorMlp, interpolateMlps } from '../src/lopt/velo/tensorMlp.js';
import type { VeloState } from '../src/lopt/velo/veloTransform.js';
import { Rng } from '../src/random/rng.js';
import type { Params } from '../src/tree/params.js';
import { disposeReplaced, disposeState } from '../src/tree/stateTree.js';
import {
  RELEASED_VELO_REF_CONFIG,
  refInit,
  refLossBufferInit,
  refLossBufferUpdate,
  refLossFeatures,
  refUpdate,
  type F64,
  type RefState,
  type VeloRefConfig,
} from './helpers/veloReference.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const f64 = (t: tf.Tensor): F64 => ({ shape: t.shape.slice(), data: Float64Array.from(t.dataSync()) });

/** |a − e| ≤ atol + rtol·scale for every element, scale = the largest |e| of the block (float32 against float64). */
function expectNear(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 2e-4, atol = 1e-6): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * scale)) throw new Error(`${label}[${i}]: got ${a}, expected ${e} (block max |e| ${scale})`);
  }
}

/** A theta with every entry drawn at a scale that makes each part of the network matter. */
function randomTheta(shapes: Record<string, readonly number[]>, seed: number): Params {
  const rng = Rng.from(seed);
  const theta: Params = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length >= 2 ? shape[shape.length - 2]! : 4;
    // The banks are mixed with weight 100·controls/K: drawn small so the per-tensor MLPs are O(1).
    const bank = name.startsWith('ff_mod_stack/') ? 0.02 : 1;
    const scale = bank * (name.includes('lstm_init_state') ? 0.3 : name.endsWith('/b') || /\/b\d$/.test(name) ? 0.2 : 1.5 / Math.sqrt(fanIn));
    theta[name] = tf.tensor(
      Array.from({ length: n }, () => scale * rng.normal()),
      shape.slice(),
    );
  }
  return theta;
}

/** Every kind of tensor: conv kernel, matrix, bias, scalar, tied dims, rank 5, [1, n], zero-initialized. */
const SHAPES: Record<string, number[]> = {
  conv: [3, 3, 2, 4],
  dense: [6, 5],
  bias: [5],
  scalar: [],
  tied: [4, 4],
  rank5: [2, 3, 2, 2, 3],
  row: [1, 5],
  zeros: [3, 2],
};

function makeParams(seed: number): Params {
  const rng = Rng.from(seed);
  const out: Params = {};
  for (const [name, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] =
      name === 'zeros'
        ? tf.zeros(shape)
        : tf.tensor(
            Array.from({ length: n }, () => 0.5 * rng.normal()),
            shape,
          );
  }
  return out;
}

/** Gradients; 'dense' carries entries beyond the ±1000 clip. */
function makeGrads(seed: number, step: number): Params {
  const rng = Rng.from(seed).fork(`step-${step}`);
  const out: Params = {};
  for (const [name, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = tf.tensor(
      Array.from({ length: n }, (_, i) => (name === 'dense' && i % 3 === 0 ? 3000 * Math.sign(rng.normal()) : 0.2 * rng.normal())),
      shape,
    );
  }
  return out;
}

const VELO_DECAYS = (): Decays => ({
  momentum: tf.tensor2d([[0.9, 0.99, 0.999]]),
  rms: tf.tensor2d([[0.999]]),
  adafactor: tf.tensor2d([[0.9, 0.99, 0.999]]),
});

/** [1, C, N] (lopt's channel-major layout) → [N, C] rows, as the reference lays them out. */
function channelsToRows(raw: tf.Tensor): Float64Array {
  return Float64Array.from(tf.tidy(() => tf.transpose(tf.squeeze(raw, [0]))).dataSync());
}

describe('velo against the float64 HyperV2 reference', () => {
  it('loss features: EMAs, the clip at twice the running max, zero for two steps, exact half-lives', () => {
    const horizon = 300;
    const losses = [2.3, 2.1, 9.5, 1.7, 1.6, 1.62, 1.4, 30, 1.2, 1.1, 1.15, 0.9];
    let ref = refLossBufferInit(horizon);
    let mine = initLossBuffer(1);
    const decays = [lossBufferDecays(horizon)];
    expectNear('decays', decays[0]!, ref.decays, 1e-7, 0);
    losses.forEach((loss, it) => {
      ref = refLossBufferUpdate(ref, loss);
      const lossT = tf.tensor1d([loss]);
      const next = updateLossBuffer(mine, lossT, decays, [it]);
      tf.dispose([lossT, mine.means, mine.runningMin]);
      mine = next;
      const features = lossFeatures(mine, decays, [it + 1]);
      // (mean − min)/(next − min) − 1 cancels twice: float32 EMAs near 2 leave ~1e-5 absolute.
      expectNear(`loss features @${it}`, features.dataSync(), refLossFeatures(ref), 2e-4, 5e-5);
      if (it < 2) expect(Array.from(features.dataSync()).every((x) => x === 0)).toBe(true);
      features.dispose();
    });
    tf.dispose([mine.means, mine.runningMin]);
  });

  for (const variant of [
    { label: 'LSTM 8, 4 banks', config: { lstmHiddenSize: 8, paramInits: 4 } },
    {
      label: 'LSTM 16, 6 banks, MLP 5, both bugged flags',
      config: { lstmHiddenSize: 16, paramInits: 6, ffHiddenSize: 5, useBuggedLossFeatures: true, useBuggedNextLstmState: true },
    },
  ]) {
    it(`over 6 steps (${variant.label}): LSTM inputs, controls, lr_mult, channels, MLP outputs and updates`, () => {
      const lo = velo(variant.config);
      const refConfig: VeloRefConfig = { ...RELEASED_VELO_REF_CONFIG, ...variant.config };
      const theta = randomTheta(lo.thetaShapes, 7);
      const thetaRef: Record<string, F64> = {};
      for (const [k, t] of Object.entries(theta)) thetaRef[k] = f64(t);
      const horizon = 40;
      const opt = lo.optimizer(theta, { totalSteps: horizon });
      let params = makeParams(3);
      let state = opt.init(params);
      const toF64 = (p: Params) => Object.fromEntries(Object.entries(p).map(([k, t]) => [k, f64(t)]));
      let ref: RefState = refInit(thetaRef, toF64(params), horizon, refConfig);
      const losses = [2.4, 2.2, 2.25, 1.9, 5.0, 1.7];
      const thetaP: Params = Object.fromEntries(Object.entries(theta).map(([k, t]) => [k, tf.expandDims(t, 0)]));
      for (let step = 0; step < losses.length; step++) {
        const grads = makeGrads(5, step);
        const r = refUpdate(thetaRef, ref, toF64(params), toF64(grads), losses[step]!, refConfig);
        const inner = state.inner as unknown as VeloState;
        const names = Object.keys(params);

        // Recompute the step's parts from lopt's own state with lopt's modules, and compare each.
        tf.tidy(() => {
          const clipped = names.map((n) => tf.expandDims(tf.clipByValue(grads[n]!, -1000, 1000), 0));
          const flatP = names.map((n) => tf.reshape(params[n]!, [1, 1, params[n]!.size]) as tf.Tensor3D);
          const buffer = updateLossBuffer(inner.loss, tf.tensor1d([losses[step]!]), [lossBufferDecays(refConfig.useBuggedLossFeatures ? 10 : horizon)], [step]);
          const lf = lossFeatures(buffer, [lossBufferDecays(refConfig.useBuggedLossFeatures ? 10 : horizon)], [step + 1]);
          expectNear(`step ${step} loss features`, lf.dataSync(), r.intermediates.lossFeatures, 2e-4, 5e-5);
          const shared = tf.concat([tf.tensor2d([fractionTrainedFeatures(step, horizon)]), lf], 1) as tf.Tensor2D;
          const rows = names.map((n, i) =>
            lstmInputs(flatP[i]!, inner.acc[n]!['m'] as tf.Tensor3D, inner.acc[n]!['v'] as tf.Tensor3D, params[n]!.shape, shared),
          );
          const x = tf.stack(rows, 1) as tf.Tensor3D;
          expectNear(`step ${step} LSTM inputs`, x.dataSync(), r.intermediates.lstmInputs.data, 2e-4, 2e-5);
          const rnn = rnnForward(thetaP, x, inner.lstm);
          expectNear(`step ${step} controls`, rnn.controls.dataSync(), r.intermediates.controls.data, 5e-4, 1e-5);
          expectNear(`step ${step} lr_mult`, rnn.lrMult.dataSync(), r.intermediates.lrMult, 5e-4, 1e-5);
          const mlps = interpolateMlps(thetaP, rnn.controls);
          names.forEach((n, i) => {
            const f = tensorFeatures('velo', clipped[i]!, tf.expandDims(params[n]!, 0), inner.acc[n]!, VELO_DECAYS());
            const rawRows = channelsToRows(f.raw);
            const want = r.intermediates.perParamInputs[n]!.data;
            // Channel by channel: each has its own scale (rsqrt features reach 1e4 where others are 1e-3).
            for (let c = 0; c < 30; c++) {
              const pick = (a: ArrayLike<number>) => Array.from({ length: a.length / 30 }, (_, j) => a[j * 30 + c]!);
              expectNear(`step ${step} '${n}' channel ${c}`, pick(rawRows), pick(want), 5e-4, 1e-7);
            }
            const normalized = tf.mul(f.raw, tf.expandDims(f.scale, 2)) as tf.Tensor3D;
            const { direction, magnitude } = applyTensorMlp(normalized, mlps, i);
            expectNear(`step ${step} '${n}' direction`, direction.dataSync(), r.intermediates.direction[n]!.data, 2e-3, 1e-5);
            expectNear(`step ${step} '${n}' magnitude`, magnitude.dataSync(), r.intermediates.magnitude[n]!.data, 2e-3, 1e-5);
          });
        });

        // The step itself.
        const { updates, state: next } = opt.update(grads, state, params, { loss: losses[step]! });
        const moved: Params = {};
        for (const n of names) {
          const want = r.newParams[n]!.data.map((v, j) => v - params[n]!.dataSync()[j]!);
          expectNear(`step ${step} update '${n}'`, updates[n]!.dataSync(), want, 3e-3, 1e-9);
          moved[n] = tf.add(params[n]!, updates[n]!);
        }
        tf.dispose([...Object.values(updates), ...Object.values(grads), ...Object.values(params)]);
        disposeReplaced(state.inner, next.inner);
        params = moved;
        state = next;
        ref = r.state;
      }
      tf.dispose([...Object.values(params), ...Object.values(theta), ...Object.values(thetaP)]);
      disposeState(state.inner);
    });
  }

  it('one step at the released sizes (LSTM 512, 256 banks) on a small tree', () => {
    const lo = velo();
    const theta = randomTheta(lo.thetaShapes, 11);
    const thetaRef: Record<string, F64> = {};
    for (const [k, t] of Object.entries(theta)) thetaRef[k] = f64(t);
    const params = makeParams(4);
    const grads = makeGrads(6, 0);
    const opt = lo.optimizer(theta, { totalSteps: 1000 });
    const state = opt.init(params);
    const toF64 = (p: Params) => Object.fromEntries(Object.entries(p).map(([k, t]) => [k, f64(t)]));
    const ref = refInit(thetaRef, toF64(params), 1000);
    const step0 = refUpdate(thetaRef, ref, toF64(params), toF64(grads), 3.1);
    const r0 = opt.update(grads, state, params, { loss: 3.1 });
    // A second step so that the LSTM state and the loss features are live.
    const moved: Params = {};
    for (const n of Object.keys(params)) moved[n] = tf.add(params[n]!, r0.updates[n]!);
    const grads1 = makeGrads(6, 1);
    const step1 = refUpdate(thetaRef, step0.state, toF64(moved), toF64(grads1), 2.9);
    const r1 = opt.update(grads1, r0.state, moved, { loss: 2.9 });
    for (const n of Object.keys(params)) {
      const want = step1.newParams[n]!.data.map((v, j) => v - moved[n]!.dataSync()[j]!);
      expectNear(`released-size update '${n}'`, r1.updates[n]!.dataSync(), want, 3e-3, 1e-9);
    }
    tf.dispose([...Object.values(theta), ...Object.values(params), ...Object.values(grads), ...Object.values(grads1), ...Object.values(moved)]);
    tf.dispose([...Object.values(r0.updates), ...Object.values(r1.updates)]);
    disposeState(state.inner);
    disposeState(r0.state.inner);
    disposeState(r1.state.inner);
  });
});
