// Self-checks of the float64 VeLO reference (test/helpers/veloReference.ts): properties derivable by hand from the upstream
// HyperV2 source, so that the reference can be trusted as the ground truth for lopt's float32 implementation.
import { describe, expect, it } from 'vitest';
import {
  type F64,
  type VeloRefConfig,
  RELEASED_VELO_REF_CONFIG,
  refFactoredDims,
  refInit,
  refLossBufferInit,
  refLossBufferUpdate,
  refLossFeatures,
  refLstmFeatures,
  refRnn,
  refThetaShapes,
  refUpdate,
} from './helpers/veloReference.js';

const SMALL: VeloRefConfig = { lstmHiddenSize: 8, paramInits: 4, ffHiddenSize: 4, useBuggedLossFeatures: false, useBuggedNextLstmState: false };
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const clipLogAbs = (v: number, scale: number) => Math.min(Math.max(Math.log(1e-8 + Math.abs(v * scale)), -5), 5) * 0.5;

function tensor(shape: number[], values: number[] | ((i: number) => number)): F64 {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float64Array.from({ length: n }, (_, i) => (typeof values === 'function' ? values(i) : values[i]!)) };
}

/** Deterministic values in [-scale, scale) from a 32-bit LCG. */
function lcg(seed: number, scale: number): (i: number) => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  };
}

function makeTheta(config: VeloRefConfig, fill: (key: string) => ((i: number) => number) | number = () => 0): Record<string, F64> {
  const theta: Record<string, F64> = {};
  for (const [key, shape] of Object.entries(refThetaShapes(config))) {
    const f = fill(key);
    theta[key] = tensor(shape, typeof f === 'number' ? () => f : f);
  }
  return theta;
}

const randomTheta = (config: VeloRefConfig, seed: number, scale = 0.3) => {
  let k = 0;
  return makeTheta(config, () => lcg(seed + 7919 * k++, scale));
};

describe('veloReference: theta layout and factored dims', () => {
  it('has every HyperV2 leaf with the released shapes', () => {
    const shapes = refThetaShapes(RELEASED_VELO_REF_CONFIG);
    expect(Object.keys(shapes)).toHaveLength(14 + 5 + 2 + 6 + 2 + 2 + 2);
    expect(shapes['rnn_params/rnn/~/linear/w']).toEqual([1024, 2048]);
    expect(shapes['rnn_params/linear_2/w']).toEqual([30, 512]);
    expect(shapes['rnn_params/rnn_to_controls/w']).toEqual([512, 256]);
    expect(shapes['ff_mod_stack/~/w2']).toEqual([256, 4, 3]);
    let channels = 0;
    for (let i = 0; i < 14; i++) channels += shapes[`ff_mod_stack/~/w0__${i}`]![1]!;
    expect(channels).toBe(30);
  });

  it('factored_dims: (argsort[-2], argsort[-1]) with a stable argsort; none below rank 2', () => {
    expect(refFactoredDims([])).toBeNull();
    expect(refFactoredDims([7])).toBeNull();
    expect(refFactoredDims([10, 10])).toEqual([0, 1]);
    expect(refFactoredDims([3, 3, 16, 32])).toEqual([2, 3]);
    expect(refFactoredDims([32, 16])).toEqual([1, 0]);
    expect(refFactoredDims([4, 1, 4])).toEqual([0, 2]);
    expect(refFactoredDims([1, 5])).toEqual([0, 1]);
  });
});

describe('veloReference: loss buffer', () => {
  it('init: halflives logspace(1, log10(num_steps), 10)', () => {
    const b = refLossBufferInit(1000);
    expect(b.decays[0]).toBeCloseTo(Math.exp(-1 / 10), 14);
    expect(b.decays[9]).toBeCloseTo(Math.exp(-1 / 1000), 14);
    expect(b.decays[3]).toBeCloseTo(Math.exp(-1 / 10 ** (1 + (2 * 3) / 9)), 14);
    expect(Array.from(b.means)).toEqual(new Array(10).fill(0));
    expect(b.runningMin[0]).toBe(999999999999);
    expect(b.iteration).toBe(0);
    // use_bugged_loss_features: init(10) makes every decay exp(-1/10)
    expect(Array.from(refLossBufferInit(10).decays).every((d) => Math.abs(d - Math.exp(-0.1)) < 1e-15)).toBe(true);
  });

  it('update: EMA of the loss, clipped to twice the largest corrected mean, running minimum of corrected means', () => {
    const b0 = refLossBufferInit(100);
    const d = Array.from(b0.decays);
    const b1 = refLossBufferUpdate(b0, 2);
    expect(b1.iteration).toBe(1);
    d.forEach((di, i) => {
      expect(b1.means[i]).toBeCloseTo(2 * (1 - di), 14);
      expect(b1.runningMin[i]).toBeCloseTo(2, 14);
    });
    // A huge loss at iteration 1 is clipped to 2·max(means / (1 - d^2)) (old means, next iteration's correction).
    const approxMax = Math.max(...d.map((di) => (2 * (1 - di)) / (1 - di ** 2)));
    const b2 = refLossBufferUpdate(b1, 1e6);
    d.forEach((di, i) => {
      const means = 2 * (1 - di) * di + 2 * approxMax * (1 - di);
      expect(b2.means[i]).toBeCloseTo(means, 12);
      expect(b2.runningMin[i]).toBeCloseTo(Math.min(2, means / (1 - di ** 2)), 12);
    });
  });

  it('features: zero while iteration <= 2, then (cor_mean[:-1] - min) / (cor_mean[1:] - min) - 1 clipped', () => {
    let b = refLossBufferInit(100);
    const losses = [3, 2.5, 2, 1.5, 1.2];
    for (let t = 0; t < losses.length; t++) {
      b = refLossBufferUpdate(b, losses[t]!);
      const f = refLossFeatures(b);
      expect(f).toHaveLength(9);
      if (b.iteration <= 2)
        expect(f.every((v) => v === 0)).toBe(true); // feature1 * 0: -0 where feature1 < 0, as upstream
      else {
        const cor = Array.from(b.means, (m, i) => m / (1 - b.decays[i]! ** b.iteration));
        for (let i = 0; i < 9; i++) {
          const den = Math.max(1e-8, cor[i + 1]! - b.runningMin[i]!);
          expect(f[i]).toBeCloseTo(Math.min(Math.max((cor[i]! - b.runningMin[i]!) / den - 1, -1), 1), 12);
          expect(Math.abs(f[i]!)).toBeLessThanOrEqual(1);
        }
      }
    }
    // A constant loss: every corrected mean equals its running minimum, so each feature is 0/1e-8 - 1 = -1.
    let c = refLossBufferInit(50);
    for (let t = 0; t < 6; t++) c = refLossBufferUpdate(c, 0.7);
    for (const v of refLossFeatures(c)) expect(v).toBeCloseTo(-1, 5);
  });
});

describe('veloReference: LSTM features', () => {
  const loss9 = Float64Array.from({ length: 9 }, (_, i) => i / 10 - 0.4);

  it('fraction embedding, loss features, rank one-hot and zero accumulators', () => {
    const shape = [3, 4];
    const zero3 = tensor([...shape, 3], () => 0);
    const zero1 = tensor([...shape, 1], () => 0);
    const p = tensor(shape, lcg(1, 1));
    const f = refLstmFeatures(p, p, zero3, zero1, 0.5, loss9);
    expect(f).toHaveLength(30);
    [0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1].forEach((ts, i) => expect(f[i]).toBeCloseTo(Math.tanh((0.5 - ts) * 10), 14));
    expect(Array.from(f.subarray(9, 18))).toEqual(Array.from(loss9));
    expect(f[18]).toBe(-2.5); // mean_rms: clip(log(1e-8), -5, 5) / 2
    expect(Array.from(f.subarray(19, 24))).toEqual([0, 0, 1, 0, 0]);
    expect(Array.from(f.subarray(24, 30))).toEqual(new Array(6).fill(-2.5));

    const rank = (s: number[]) => {
      const n = s.reduce((a, b) => a * b, 1);
      const q = tensor(s, () => 1);
      return Array.from(
        refLstmFeatures(
          q,
          q,
          tensor([...s, 3], () => 0),
          tensor([...s, 1], () => 0),
          0,
          loss9,
        ).subarray(19, 24),
      ).concat([n]);
    };
    expect(rank([])).toEqual([1, 0, 0, 0, 0, 1]);
    expect(rank([1, 5])).toEqual([0, 1, 0, 0, 0, 5]);
    expect(rank([2, 1, 2, 2])).toEqual([0, 0, 0, 1, 0, 8]);
    expect(rank([2, 2, 2, 2, 2])).toEqual([0, 0, 0, 0, 0, 32]);
  });

  it('var_m, mean_rms and var_rms (centred on the momentum mean) after norm_mult = rsqrt(mean(p^2))', () => {
    const p = tensor([2], [2, -2]); // mean(p^2) = 4, norm_mult = 1/2
    const m = tensor([2, 3], [0.2, 0.4, 0.6, 0.6, 0.0, 1.0]);
    const rms = tensor([2, 1], [0.1, 0.3]);
    const f = refLstmFeatures(p, tensor([2], [5, 5]), m, rms, 1, loss9);
    const mm = [0, 1, 2].map((k) => (m.data[k]! + m.data[3 + k]!) / 4); // mean of m / 2
    const varM = [0, 1, 2].map((k) => ((m.data[k]! - m.data[3 + k]!) / 4) ** 2);
    const varRms = [0, 1, 2].map((k) => ((0.05 - mm[k]!) ** 2 + (0.15 - mm[k]!) ** 2) / 2);
    expect(f[18]).toBeCloseTo(clipLogAbs(0.1, 10), 14);
    [0, 1, 2].forEach((k) => {
      expect(f[24 + k]).toBeCloseTo(clipLogAbs(varM[k]!, 10), 12);
      expect(f[27 + k]).toBeCloseTo(clipLogAbs(varRms[k]!, 10), 12);
    });
    // The gradient is scaled upstream but never read: it does not change the features.
    expect(Array.from(refLstmFeatures(p, tensor([2], [-9, 3]), m, rms, 1, loss9))).toEqual(Array.from(f));
  });

  it('a scalar parameter: means over no axes are the identity', () => {
    const p = tensor([], [0.5]); // norm_mult = 2
    const m = tensor([3], [0.1, 0.2, 0.3]);
    const rms = tensor([1], [0.05]);
    const f = refLstmFeatures(p, p, m, rms, 0, loss9);
    expect(f[18]).toBeCloseTo(clipLogAbs(0.1, 10), 14);
    expect(Array.from(f.subarray(19, 24))).toEqual([1, 0, 0, 0, 0]);
    expect(Array.from(f.subarray(24, 27))).toEqual([-2.5, -2.5, -2.5]);
    [0, 1, 2].forEach((k) => expect(f[27 + k]).toBeCloseTo(clipLogAbs((0.1 - 2 * m.data[k]!) ** 2, 10), 14));
  });
});

describe('veloReference: rnn', () => {
  const H = SMALL.lstmHiddenSize;
  const K = SMALL.paramInits;
  const T = 3;
  const inputs = tensor([T, 30], lcg(5, 1));
  const state = { hidden: tensor([T, H], lcg(6, 1)), cell: tensor([T, H], lcg(7, 2)) };

  it('with zero weights: c = sigmoid(1)·c_prev, h = sigmoid(0)·tanh(c), controls and lr_mult are the biases', () => {
    const theta = makeTheta(SMALL, (key) => (key === 'rnn_params/rnn_to_controls/b' ? 0.25 : key === 'rnn_params/step_size/b' ? -1.5 : 0));
    const out = refRnn(theta, inputs, state);
    for (let i = 0; i < T * H; i++) {
      const c = sigmoid(1) * state.cell.data[i]!;
      expect(out.state.cell.data[i]).toBeCloseTo(c, 15);
      expect(out.state.hidden.data[i]).toBeCloseTo(0.5 * Math.tanh(c), 15);
    }
    expect(out.controls.shape).toEqual([T, K]);
    expect(Array.from(out.controls.data)).toEqual(new Array(T * K).fill(0.25));
    expect(Array.from(out.lrMult)).toEqual([-1.5, -1.5, -1.5]);
  });

  it('splits the gates in the order i, g, f, o', () => {
    const bias = Float64Array.from({ length: 4 * H }, (_, j) => (j < H ? 0.3 : j < 2 * H ? 0.7 : j < 3 * H ? -0.2 : 1.1));
    const theta = makeTheta(SMALL);
    theta['rnn_params/rnn/~/linear/b'] = { shape: [4 * H], data: bias };
    const out = refRnn(theta, inputs, state);
    for (let i = 0; i < T * H; i++) {
      const c = sigmoid(-0.2 + 1) * state.cell.data[i]! + sigmoid(0.3) * Math.tanh(0.7);
      expect(out.state.cell.data[i]).toBeCloseTo(c, 14);
      expect(out.state.hidden.data[i]).toBeCloseTo(sigmoid(1.1) * Math.tanh(c), 14);
    }
  });

  it('mix layers: the max over tensors is added to linear_2; the first linear is dead code', () => {
    // linear_1 = relu(bias) with zero weights, so v = relu(b); linear_2 bias b2: x = b2 + relu(b1). Route x[0] to the
    // g gate of unit 0 with weight 1 and read c.
    const theta = makeTheta(SMALL, (key) => (key === 'rnn_params/linear_1/b' ? 0.4 : key === 'rnn_params/linear_2/b' ? 0.1 : 0));
    theta['rnn_params/rnn/~/linear/w']!.data[0 * 4 * H + H + 0] = 1;
    const zeroState = { hidden: tensor([T, H], () => 0), cell: tensor([T, H], () => 0) };
    const out = refRnn(theta, inputs, zeroState);
    for (let t = 0; t < T; t++) expect(out.state.cell.data[t * H]).toBeCloseTo(0.5 * Math.tanh(0.5), 15);

    const random = randomTheta(SMALL, 11);
    const a = refRnn(random, inputs, state);
    const dead = { ...random, 'rnn_params/linear/w': tensor([30, H], lcg(99, 5)), 'rnn_params/linear/b': tensor([H], lcg(98, 5)) };
    expect(Array.from(refRnn(dead, inputs, state).controls.data)).toEqual(Array.from(a.controls.data));
    // Rows are tensors: permuting them permutes the outputs (the max over tensors is order-free).
    const perm = [2, 0, 1];
    const permRows = (x: F64, w: number) => tensor(x.shape, (i) => x.data[perm[Math.floor(i / w)]! * w + (i % w)]!);
    const b = refRnn(random, permRows(inputs, 30), { hidden: permRows(state.hidden, H), cell: permRows(state.cell, H) });
    const expected = permRows(a.controls, K).data;
    b.controls.data.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 13));
  });
});

describe('veloReference: update', () => {
  const params: Record<string, F64> = {
    b: tensor([4], [0.1, -0.2, 0.3, 0.05]),
    s: tensor([], [0.7]),
    w: tensor([3, 5], lcg(21, 0.5)),
    c: tensor([2, 1, 3, 3], lcg(22, 0.5)),
  };
  const grads: Record<string, F64> = {
    b: tensor([4], [0.5, -5000, 0.02, 0]),
    s: tensor([], [-0.3]),
    w: tensor([3, 5], lcg(23, 1)),
    c: tensor([2, 1, 3, 3], lcg(24, 1)),
  };

  it('a random theta on a tree with a scalar: finite, shaped, and the first step reads zero accumulators', () => {
    const theta = randomTheta(SMALL, 3);
    const state0 = refInit(theta, params, 100, SMALL);
    expect(state0.lstm.hidden.shape).toEqual([4, SMALL.lstmHiddenSize]);
    expect(state0.accum['w']!.vRow.shape).toEqual([3, 3]); // (d1, d0) = (0, 1): v_row drops d0
    expect(state0.accum['w']!.vCol.shape).toEqual([5, 3]);
    expect(state0.accum['c']!.vRow.shape).toEqual([2, 1, 3, 3]); // (d1, d0) = (2, 3)
    expect(state0.accum['s']!.vDiag.shape).toEqual([3]);
    const { state, newParams, intermediates } = refUpdate(theta, state0, params, grads, 2.5, SMALL);
    expect(state.iteration).toBe(1);
    expect(state.lossBuffer.iteration).toBe(1);
    expect(intermediates.lossFeatures.every((v) => v === 0)).toBe(true);
    expect(intermediates.lstmInputs.shape).toEqual([4, 30]);
    expect(intermediates.controls.shape).toEqual([4, SMALL.paramInits]);
    expect(intermediates.perParamInputs['s']!.shape).toEqual([1, 30]);
    expect(intermediates.perParamInputs['c']!.shape).toEqual([18, 30]);
    expect(intermediates.direction['s']!.shape).toEqual([1]);
    for (const name of Object.keys(params)) {
      expect(newParams[name]!.shape).toEqual(params[name]!.shape);
      expect(newParams[name]!.data.every(Number.isFinite)).toBe(true);
      expect(intermediates.perParamInputs[name]!.data.every(Number.isFinite)).toBe(true);
    }
    for (let t = 0; t < 4; t++) {
      const row = intermediates.lstmInputs.data.subarray(t * 30, (t + 1) * 30);
      expect(row[0]).toBeCloseTo(Math.tanh(-0.3), 14); // fraction_trained = 0
      expect(Array.from(row.subarray(24, 30))).toEqual(new Array(6).fill(-2.5)); // old m, rms are zero
    }
    expect(Array.from(intermediates.lstmInputs.data.subarray(19, 24))).toEqual([0, 1, 0, 0, 0]); // b: rank 1
    expect(Array.from(intermediates.lstmInputs.data.subarray(30 + 19, 30 + 24))).toEqual([1, 0, 0, 0, 0]); // s: rank 0
    expect(Array.from(intermediates.lstmInputs.data.subarray(90 + 19, 90 + 24))).toEqual([0, 0, 0, 1, 0]); // c: rank 3
    // The new LSTM state is the rnn's.
    const rerun = refRnn(theta, intermediates.lstmInputs, state0.lstm);
    expect(Array.from(state.lstm.hidden.data)).toEqual(Array.from(rerun.state.hidden.data));
    // The second step reads the first step's accumulators and buffer, and fraction_trained = 1/100.
    const second = refUpdate(theta, state, newParams, grads, 2.0, SMALL);
    expect(second.intermediates.lstmInputs.data[0]).toBeCloseTo(Math.tanh((0.01 - 0.03) * 10), 14);
    expect(second.intermediates.lstmInputs.data[24]).not.toBe(-2.5);
    // use_bugged_next_lstm_state keeps the old LSTM state.
    const bugged = refUpdate(theta, state0, params, grads, 2.5, { ...SMALL, useBuggedNextLstmState: true });
    expect(bugged.state.lstm).toBe(state0.lstm);
    expect(Array.from(state.lstm.hidden.data)).not.toEqual(Array.from(state0.lstm.hidden.data));
  });

  it('accumulators and raw per-parameter channels after one step from zero', () => {
    const theta = randomTheta(SMALL, 4);
    const { intermediates, state } = refUpdate(theta, refInit(theta, params, 10, SMALL), params, grads, 1, SMALL);
    const md = [0.9, 0.99, 0.999];
    // b is rank 1 (not factored); its second gradient is clipped to -1000.
    const xb = intermediates.perParamInputs['b']!.data;
    const gb = [0.5, -1000, 0.02, 0];
    gb.forEach((g, i) => {
      const x = xb.subarray(i * 30, (i + 1) * 30);
      const rms = (1 - 0.999) * (g * g);
      const rs = 1 / Math.sqrt(rms + 1e-6);
      expect(x[0]).toBe(g);
      expect(x[1]).toBe(Math.min(Math.max(g, -0.1), 0.1));
      expect(x[2]).toBe(params['b']!.data[i]);
      md.forEach((d, k) => {
        const m = (1 - d) * g;
        const v = (1 - d) * (g * g + 1e-30);
        expect(x[3 + k]).toBeCloseTo(m, 15);
        expect(x[7 + k]).toBeCloseTo(m * rs, 12);
        expect(x[11 + k]).toBeCloseTo(g / Math.sqrt(Math.max(v + 1e-9, 1e-9)), 10);
        expect(x[15 + k]).toBeCloseTo(v, 15);
        expect(x[18 + k]).toBeCloseTo(v, 15);
        expect(x[21 + k]! * Math.sqrt(v + 1e-8)).toBeCloseTo(1, 12);
        expect(x[24 + k]! * Math.sqrt(v + 1e-8)).toBeCloseTo(1, 12);
        if (m === 0) expect(x[27 + k]).toBe(0);
        else expect(x[27 + k]! / (m * v ** -0.5)).toBeCloseTo(1, 12); // m * v_diag ** -0.5
      });
      expect(x[6]).toBe(rms);
      expect(x[10]! / rs).toBeCloseTo(1, 12);
      expect(x[14]).toBeCloseTo(g * rs, 10);
    });
    expect(Array.from(state.accum['b']!.m.data.subarray(3, 6))).toEqual(md.map((d) => d * 0 + (1 - d) * -1000));

    // w [3, 5] is factored with (d1, d0) = (0, 1): v_row[r] = mean over columns, v_col[c] = mean over rows.
    const g = grads['w']!.data;
    const xw = intermediates.perParamInputs['w']!.data;
    md.forEach((d, k) => {
      const vRow = [0, 1, 2].map((r) => ((1 - d) * [0, 1, 2, 3, 4].reduce((s, c) => s + g[r * 5 + c]! ** 2 + 1e-30, 0)) / 5);
      const vCol = [0, 1, 2, 3, 4].map((c) => ((1 - d) * [0, 1, 2].reduce((s, r) => s + g[r * 5 + c]! ** 2 + 1e-30, 0)) / 3);
      const rowMean = vRow.reduce((a, b) => a + b, 0) / 3;
      for (let r = 0; r < 3; r++)
        for (let c = 0; c < 5; c++) {
          const i = r * 5 + c;
          const m = (1 - d) * g[i]!;
          const rowF = 1 / Math.sqrt(Math.max(vRow[r]! / (rowMean + 1e-9), 1e-9));
          const colF = 1 / Math.sqrt(Math.max(vCol[c]!, 1e-9));
          expect(xw[i * 30 + 11 + k]! / (g[i]! * rowF * colF)).toBeCloseTo(1, 12); // fac_g
          expect(xw[i * 30 + 15 + k]).toBeCloseTo(vRow[r]!, 15); // row_feat
          expect(xw[i * 30 + 18 + k]).toBeCloseTo(vCol[c]!, 15); // col_feat
          expect(xw[i * 30 + 21 + k]! * Math.sqrt(vRow[r]! + 1e-8)).toBeCloseTo(1, 12);
          expect(xw[i * 30 + 24 + k]! * Math.sqrt(vCol[c]! + 1e-8)).toBeCloseTo(1, 12);
          expect(xw[i * 30 + 27 + k]! / (m * rowF * colF)).toBeCloseTo(1, 12); // fac_mom_mult
        }
    });
  });

  it('the step: lr_mult · direction · sqrt(mean(p²) + 1e-9) · exp(0.001·magnitude) · 0.001', () => {
    // Zero LSTM weights and state: h = 0, so controls = rnn_to_controls/b = 1 and lr_mult = step_size/b.
    // Each ff leaf interpolates to 100 · mean_k(θ[k]), so θ[k] = 0.01·w gives the MLP weights w.
    const dir = 0.8;
    const mag = 50;
    const lr = 0.6;
    const theta = makeTheta(SMALL, (key) => (key === 'rnn_params/rnn_to_controls/b' ? 1 : key === 'rnn_params/step_size/b' ? lr : 0));
    const b2 = theta['ff_mod_stack/~/b2']!.data;
    for (let k = 0; k < SMALL.paramInits; k++) b2.set([0.01 * dir, 0.01 * mag, 0.01 * 3], k * 3);
    const { newParams, intermediates } = refUpdate(theta, refInit(theta, params, 10, SMALL), params, grads, 1, SMALL);
    expect(Array.from(intermediates.lrMult)).toEqual([lr, lr, lr, lr]);
    for (const name of Object.keys(params)) {
      const p = params[name]!.data;
      const scale = Math.sqrt(p.reduce((s, v) => s + v * v, 0) / p.length + 1e-9);
      p.forEach((v, i) => {
        expect(intermediates.direction[name]!.data[i]).toBeCloseTo(dir, 14);
        expect(intermediates.magnitude[name]!.data[i]).toBeCloseTo(mag, 12);
        expect(newParams[name]!.data[i]).toBeCloseTo(v - lr * dir * scale * Math.exp(mag * 0.001) * 0.001, 14);
      });
    }

    // Route the normalized gradient channel through the MLP: direction = relu(relu(g / sqrt(1e-5 + mean(g²)))).
    theta['ff_mod_stack/~/b2']!.data.fill(0);
    for (let k = 0; k < SMALL.paramInits; k++) {
      theta['ff_mod_stack/~/w0__0']!.data[k * 4] = 0.01; // g → hidden 0
      theta['ff_mod_stack/~/w1']!.data[k * 16] = 0.01; // hidden 0 → hidden 0
      theta['ff_mod_stack/~/w2']!.data[k * 12] = 0.01; // hidden 0 → direction
    }
    const routed = refUpdate(theta, refInit(theta, params, 10, SMALL), params, grads, 1, SMALL);
    const gw = grads['w']!.data;
    const norm = 1 / Math.sqrt(1e-5 + gw.reduce((s, v) => s + v * v, 0) / gw.length);
    gw.forEach((g, i) => expect(routed.intermediates.direction['w']!.data[i]).toBeCloseTo(Math.max(g * norm, 0), 12));
    // A scalar: mean(g²) over its one element.
    expect(routed.intermediates.direction['s']!.data[0]).toBe(0); // g = -0.3 < 0
  });
});
