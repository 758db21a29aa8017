/**
 * An independent float64 re-implementation of VeLO: learned_optimization's `HyperV2` learned optimizer, written line by
 * line from the upstream Python so that tests can use it as the ground truth for lopt's float32 implementation.
 *
 * Upstream sources (quoted in the comments below by function name):
 *   learned_optimization/research/general_lopt/hyper_v2.py   HyperV2, BufferLossAccumulators, _ff_mod,
 *                                                             lstm_features_for_tensor, _rnn_forward, opt_fn.update
 *   learned_optimization/learned_optimizers/common.py         vec_rolling_mom, vec_rolling_rms, vec_factored_rolling
 *   haiku/_src/recurrent.py                                   hk.LSTM.__call__
 *
 * It imports nothing from lopt's src/ and does not use tfjs, on purpose: plain loops over Float64Arrays in row-major
 * order with explicit shapes. The accumulators keep upstream's layout: the decay axis is LAST (vmap out_axes=-1), so
 * `m` is [...p.shape, 3], `rms` is [...p.shape, 1], and the adafactor `v_row`/`v_col`/`v_diag` carry a trailing 3.
 *
 * Configuration is the released VeLO's (hidden sizes configurable); every other HyperV2 flag is at its default:
 * ff_hidden_layers 2, momentum decays (0.9, 0.99, 0.999), rms decays (0.999,), adafactor decays (0.9, 0.99, 0.999),
 * mix_layers True, exp_mult 0.001, step_mult 0.001, all with_* True, adafactor_accumulator True, param_scale_mult True,
 * precondition_output False, rnn_state_decay 0, with_validation_feature_dim False, constant_loss False,
 * clip_param_scale_amount None.
 */

/** A float64 tensor in row-major order. A scalar has shape [] and one element. */
export interface F64 {
  shape: number[];
  data: Float64Array;
}

export interface VeloRefConfig {
  /** HyperV2(lstm_hidden_size): H. */
  lstmHiddenSize: number;
  /** HyperV2(param_inits): K, the number of per-parameter MLPs interpolated by the LSTM's controls. */
  paramInits: number;
  /** HyperV2(ff_hidden_size): F. */
  ffHiddenSize: number;
  /** HyperV2(use_bugged_loss_features): the loss buffer is init(10) instead of init(num_steps). */
  useBuggedLossFeatures: boolean;
  /** HyperV2(use_bugged_next_lstm_state): the LSTM state is never carried forward. */
  useBuggedNextLstmState: boolean;
}

/** The released VeLO: lstm_hidden_size 512, param_inits 256, use_bugged_loss_features False. */
export const RELEASED_VELO_REF_CONFIG: VeloRefConfig = Object.freeze({
  lstmHiddenSize: 512,
  paramInits: 256,
  ffHiddenSize: 4,
  useBuggedLossFeatures: false,
  useBuggedNextLstmState: false,
});

// HyperV2.__init__ defaults.
const MOMENTUM_DECAYS = [0.9, 0.99, 0.999]; // initial_momentum_decays
const RMS_DECAYS = [0.999]; // initial_rms_decays
const ADAFACTOR_DECAYS = [0.9, 0.99, 0.999]; // initial_adafactor_decays
const EXP_MULT = 0.001; // exp_mult
const STEP_MULT = 0.001; // step_mult
// _fractional_tanh_embed: timescales (float32 upstream; float64 here).
const FRACTION_TIMESCALES = [0.03, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1];
/** BufferLossAccumulators.init: len(decays). */
const NUM_LOSS_DECAYS = 10;
/** lstm_features_for_tensor output: fraction_left 9 + loss_features 9 + mean_rms 1 + rank 5 + var_m 3 + var_rms 3. */
const NUM_LSTM_FEATURES = 30;
/** Channel counts of _ff_mod's 14 input groups, in the order they are appended to `inps`. */
const FF_GROUP_CHANNELS = [1, 1, 1, 3, 1, 3, 1, 3, 1, 3, 3, 3, 3, 3];
const NUM_FF_CHANNELS = 30;
const NM = MOMENTUM_DECAYS.length;
const NA = ADAFACTOR_DECAYS.length;

// ---------------------------------------------------------------------------------------------------------------------
// Small helpers.

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function f64(shape: number[], data?: Float64Array): F64 {
  const n = numel(shape);
  if (data && data.length !== n) throw new Error(`veloReference: ${data.length} values for shape [${shape.join(', ')}]`);
  return { shape: [...shape], data: data ?? new Float64Array(n) };
}

/** jnp.clip: NaN stays NaN (Math.min/Math.max propagate NaN as jnp.minimum/jnp.maximum do). */
function clip(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** lax.rsqrt. */
function rsqrt(x: number): number {
  return 1 / Math.sqrt(x);
}

/** _safe_rsqrt / common.safe_rsqrt: rsqrt(max(x, 1e-9)). */
function safeRsqrt(x: number): number {
  return rsqrt(Math.max(x, 1e-9));
}

/** _clip_log_abs: clip(log(1e-8 + |v * scale|), -5, 5) * 0.5. */
function clipLogAbs(v: number, scale: number): number {
  return clip(Math.log(1e-8 + Math.abs(v * scale)), -5, 5) * 0.5;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** onp.delete(shape, axis). */
function deleteAxis(shape: readonly number[], axis: number): number[] {
  return shape.filter((_, i) => i !== axis);
}

/**
 * For each row-major flat index of `shape`, the flat index of the same element in `shape` with `axis` removed: the
 * index that jnp.mean(x, axis) writes to, and the index that jnp.expand_dims(y, axis) (broadcast back) reads from.
 */
function dropAxisIndexMap(shape: readonly number[], axis: number): Int32Array {
  const n = numel(shape);
  const len = shape[axis]!;
  const inner = numel(shape.slice(axis + 1));
  const out = new Int32Array(n);
  for (let f = 0; f < n; f++) out[f] = Math.floor(f / (inner * len)) * inner + (f % inner);
  return out;
}

/** jnp.mean(x, axis=axis) for one axis. */
function meanAxis(x: F64, axis: number): F64 {
  const map = dropAxisIndexMap(x.shape, axis);
  const out = f64(deleteAxis(x.shape, axis));
  for (let f = 0; f < x.data.length; f++) out.data[map[f]!]! += x.data[f]!;
  const len = x.shape[axis]!;
  for (let j = 0; j < out.data.length; j++) out.data[j]! /= len;
  return out;
}

/** hk.Linear: x [rows, inDim] @ w [inDim, outDim] + b [outDim]. */
function linear(x: Float64Array, rows: number, inDim: number, w: Float64Array, b: Float64Array, outDim: number): Float64Array {
  const out = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    const o = r * outDim;
    for (let i = 0; i < inDim; i++) {
      const xi = x[r * inDim + i]!;
      const wi = i * outDim;
      for (let j = 0; j < outDim; j++) out[o + j]! += xi * w[wi + j]!;
    }
    for (let j = 0; j < outDim; j++) out[o + j]! += b[j]!;
  }
  return out;
}

function relu(x: Float64Array): Float64Array {
  // jax.nn.relu: max(x, 0); NaN stays NaN.
  return x.map((v) => (v < 0 ? 0 : v));
}

/** theta[key].data, after checking that it exists (and its shape, when given). */
function thetaData(theta: Record<string, F64>, key: string, shape?: readonly number[]): Float64Array {
  const t = theta[key];
  if (!t) throw new Error(`veloReference: theta has no ${key}`);
  if (shape && !sameShape(t.shape, shape)) throw new Error(`veloReference: theta ${key} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  if (t.data.length !== numel(t.shape)) throw new Error(`veloReference: theta ${key} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  return t.data;
}

// ---------------------------------------------------------------------------------------------------------------------
// Theta layout.

const FF_PREFIX = 'ff_mod_stack/~/';
const FF_LEAVES = [...FF_GROUP_CHANNELS.map((_, i) => `w0__${i}`), 'b0', 'w1', 'b1', 'w2', 'b2'];

/**
 * Every theta leaf and its shape (H = lstmHiddenSize, K = paramInits, F = ffHiddenSize). `ff_mod_stack` leaves carry
 * the leading K axis from HyperV2.init's jax.vmap(ffmod_init) over param_inits keys.
 */
export function refThetaShapes(config: VeloRefConfig = RELEASED_VELO_REF_CONFIG): Record<string, number[]> {
  const { lstmHiddenSize: H, paramInits: K, ffHiddenSize: F } = config;
  const shapes: Record<string, number[]> = {};
  FF_GROUP_CHANNELS.forEach((c, i) => (shapes[`${FF_PREFIX}w0__${i}`] = [K, c, F]));
  shapes[`${FF_PREFIX}b0`] = [K, F];
  shapes[`${FF_PREFIX}w1`] = [K, F, F];
  shapes[`${FF_PREFIX}b1`] = [K, F];
  shapes[`${FF_PREFIX}w2`] = [K, F, 3];
  shapes[`${FF_PREFIX}b2`] = [K, 3];
  shapes['lstm_init_state/hidden'] = [1, H];
  shapes['lstm_init_state/cell'] = [1, H];
  for (const name of ['linear', 'linear_1', 'linear_2']) {
    shapes[`rnn_params/${name}/w`] = [NUM_LSTM_FEATURES, H];
    shapes[`rnn_params/${name}/b`] = [H];
  }
  shapes['rnn_params/rnn/~/linear/w'] = [2 * H, 4 * H];
  shapes['rnn_params/rnn/~/linear/b'] = [4 * H];
  shapes['rnn_params/rnn_to_controls/w'] = [H, K];
  shapes['rnn_params/rnn_to_controls/b'] = [K];
  shapes['rnn_params/step_size/w'] = [H, 1];
  shapes['rnn_params/step_size/b'] = [1];
  return shapes;
}

function checkTheta(theta: Record<string, F64>, config: VeloRefConfig): void {
  for (const [key, shape] of Object.entries(refThetaShapes(config))) thetaData(theta, key, shape);
}

// ---------------------------------------------------------------------------------------------------------------------
// factored_dims (hyper_v2.py and common.py define the same function).

/**
 * factored_dims(shape): null for rank < 2, else (d1, d0) = (argsort[-2], argsort[-1]): the second-largest and the
 * largest axis. The argsort is stable (ties keep the lower index first, as numpy's argsort does on these small arrays),
 * so [10, 10] gives (0, 1) and [3, 3, 16, 32] gives (2, 3).
 */
export function refFactoredDims(shape: number[]): [number, number] | null {
  if (shape.length < 2) return null;
  const sorted = shape.map((d, i) => ({ d, i })).sort((a, b) => a.d - b.d || a.i - b.i);
  return [sorted[sorted.length - 2]!.i, sorted[sorted.length - 1]!.i];
}

// ---------------------------------------------------------------------------------------------------------------------
// BufferLossAccumulators.

export interface RefLossBuffer {
  /** "means" [10]. */
  means: Float64Array;
  /** "iteration". */
  iteration: number;
  /** "running_min" [10]. */
  runningMin: Float64Array;
  /** "decays" [10]. */
  decays: Float64Array;
}

/** BufferLossAccumulators.init(num_steps). */
export function refLossBufferInit(numSteps: number): RefLossBuffer {
  // halflife = jnp.logspace(1, jnp.log10(num_steps), 10); decays = jnp.exp(-1. / halflife)
  const stop = Math.log10(numSteps);
  const decays = new Float64Array(NUM_LOSS_DECAYS);
  for (let i = 0; i < NUM_LOSS_DECAYS; i++) {
    const exponent = i === NUM_LOSS_DECAYS - 1 ? stop : 1 + ((stop - 1) * i) / (NUM_LOSS_DECAYS - 1);
    decays[i] = Math.exp(-1 / 10 ** exponent);
  }
  return {
    means: new Float64Array(NUM_LOSS_DECAYS), // jnp.zeros
    iteration: 0,
    runningMin: new Float64Array(NUM_LOSS_DECAYS).fill(999999999999), // 999999999999. * jnp.ones
    decays,
  };
}

/** BufferLossAccumulators.update(state, loss). Returns a new state. */
export function refLossBufferUpdate(state: RefLossBuffer, loss: number): RefLossBuffer {
  const { decays, iteration } = state;
  const n = decays.length;
  // cor_mean = state["means"] / (1 - jdecays**(state["iteration"] + 1)); approx_max = jnp.max(cor_mean)
  let approxMax = -Infinity;
  for (let i = 0; i < n; i++) {
    const corMean = state.means[i]! / (1 - decays[i]! ** (iteration + 1));
    approxMax = Math.max(approxMax, corMean); // NaN propagates, as in jnp.max
  }
  // approx_max = jnp.where(state["iteration"] == 0, loss, approx_max)
  if (iteration === 0) approxMax = loss;
  // loss = jnp.minimum(jnp.abs(approx_max) * 2, loss)
  const clippedLoss = Math.min(Math.abs(approxMax) * 2, loss);
  const means = new Float64Array(n);
  const runningMin = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // means = state["means"] * jdecays + loss * (1. - jdecays)
    means[i] = state.means[i]! * decays[i]! + clippedLoss * (1 - decays[i]!);
    // cor_mean = means / (1 - jdecays**(state["iteration"] + 1)); running_min = jnp.minimum(state["running_min"], cor_mean)
    const corMean = means[i]! / (1 - decays[i]! ** (iteration + 1));
    runningMin[i] = Math.min(state.runningMin[i]!, corMean);
  }
  return { means, iteration: iteration + 1, runningMin, decays: state.decays };
}

/** BufferLossAccumulators.features(state): 9 values in [-1, 1], all zero while iteration <= 2. */
export function refLossFeatures(state: RefLossBuffer): Float64Array {
  const { decays, iteration } = state;
  const n = decays.length;
  // cor_mean = state["means"] / (1 - jdecays**(state["iteration"]))
  const corMean = Array.from(state.means, (m, i) => m / (1 - decays[i]! ** iteration));
  const out = new Float64Array(n - 1);
  for (let i = 0; i < n - 1; i++) {
    // approx_max = cor_mean[1:]; cor_mean = cor_mean[0:-1]; running_min = state["running_min"][0:-1]
    const approxMax = corMean[i + 1]!;
    const runningMin = state.runningMin[i]!;
    // den = jnp.maximum(1e-8, (approx_max - running_min))
    const den = Math.max(1e-8, approxMax - runningMin);
    // pre_center = (cor_mean - running_min) / den; feature1 = clip(pre_center - 1.0, -1, 1)
    const feature1 = clip((corMean[i]! - runningMin) / den - 1, -1, 1);
    // jnp.where(state["iteration"] <= 2, feature1 * 0, feature1)
    out[i] = iteration <= 2 ? feature1 * 0 : feature1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// lstm_features_for_tensor.

/**
 * HyperV2.lstm_features_for_tensor(p, g, m, rms, fraction_trained, loss_features): the 30 LSTM inputs of one tensor, in
 * sorted key order: fraction_left [9], loss_features [9], mean_rms [1], rank [5], var_m [3], var_rms [3].
 * `m` is [...p.shape, 3] and `rms` is [...p.shape, 1]. Upstream also scales `g` by norm_mult but never reads it again,
 * so the gradient does not enter these features.
 */
export function refLstmFeatures(p: F64, g: F64, m: F64, rms: F64, fractionTrained: number, lossFeatures: Float64Array): Float64Array {
  const n = numel(p.shape);
  if (!sameShape(g.shape, p.shape)) throw new Error('veloReference: lstm features: g and p differ in shape');
  if (m.data.length !== n * NM || rms.data.length !== n * RMS_DECAYS.length) throw new Error('veloReference: lstm features: accumulator sizes');
  if (lossFeatures.length !== NUM_LOSS_DECAYS - 1) throw new Error('veloReference: lstm features: 9 loss features expected');
  // norm_mult = jax.lax.rsqrt(jnp.maximum(1e-9, jnp.mean(p**2)))
  let sumP2 = 0;
  for (let i = 0; i < n; i++) sumP2 += p.data[i]! ** 2;
  const normMult = rsqrt(Math.max(1e-9, sumP2 / n));
  // m = m * norm_mult; rms = rms * norm_mult   (g = g * norm_mult and p = p * norm_mult are unused below)
  // leading_axis = range(len(p.shape)); for a scalar that is no axes and each mean is the identity (n = 1 here).
  // mean_m = jnp.mean(m, axis=leading_axis, keepdims=True)   [..., 3]
  const meanM = new Float64Array(NM);
  for (let i = 0; i < n; i++) for (let k = 0; k < NM; k++) meanM[k]! += m.data[i * NM + k]! * normMult;
  for (let k = 0; k < NM; k++) meanM[k]! /= n;
  // var_m = jnp.mean(jnp.square(m - mean_m), axis=leading_axis)   [3]
  const varM = new Float64Array(NM);
  for (let i = 0; i < n; i++) for (let k = 0; k < NM; k++) varM[k]! += (m.data[i * NM + k]! * normMult - meanM[k]!) ** 2;
  for (let k = 0; k < NM; k++) varM[k]! /= n;
  // mean_rms = jnp.mean(rms, axis=leading_axis, keepdims=True)   [..., 1]
  let meanRms = 0;
  for (let i = 0; i < n; i++) meanRms += rms.data[i]! * normMult;
  meanRms /= n;
  // var_rms = jnp.mean(jnp.square(rms - mean_m), axis=leading_axis): centred on the MOMENTUM mean; rms [..., 1]
  // broadcasts against mean_m [..., 3], so var_rms has 3 entries.
  const varRms = new Float64Array(NM);
  for (let i = 0; i < n; i++) for (let k = 0; k < NM; k++) varRms[k]! += (rms.data[i]! * normMult - meanM[k]!) ** 2;
  for (let k = 0; k < NM; k++) varRms[k]! /= n;
  // n_rank = onp.sum(onp.asarray(p.shape) > 1); inputs["rank"] = hk.one_hot(n_rank, 5)   (all zero for 5 or more)
  const nRank = p.shape.filter((d) => d > 1).length;

  const out = new Float64Array(NUM_LSTM_FEATURES);
  let o = 0;
  // "fraction_left": _fractional_tanh_embed(fraction_trained) = tanh((x - timescale) * 10)
  for (const ts of FRACTION_TIMESCALES) out[o++] = Math.tanh((fractionTrained - ts) * 10);
  // "loss_features"
  for (const v of lossFeatures) out[o++] = v;
  // "mean_rms": _clip_log_abs(reshape(mean_rms, [1]), scale=10.)
  out[o++] = clipLogAbs(meanRms, 10);
  // "rank"
  for (let r = 0; r < 5; r++) out[o++] = r === nRank ? 1 : 0;
  // "var_m": _clip_log_abs(var_m, scale=10.)
  for (let k = 0; k < NM; k++) out[o++] = clipLogAbs(varM[k]!, 10);
  // "var_rms": _clip_log_abs(var_rms, scale=10.)
  for (let k = 0; k < NM; k++) out[o++] = clipLogAbs(varRms[k]!, 10);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// _rnn_forward (mix layers + hk.LSTM + heads).

/**
 * HyperV2._rnn_forward(x, state) applied with theta["rnn_params"]: inputs [T, 30], state rows [T, H].
 * Sizes are read from theta (H from the state, K from rnn_to_controls/w).
 */
export function refRnn(
  theta: Record<string, F64>,
  inputs: F64,
  state: { hidden: F64; cell: F64 },
): { controls: F64; lrMult: Float64Array; state: { hidden: F64; cell: F64 } } {
  const [T, D] = inputs.shape as [number, number];
  if (inputs.shape.length !== 2 || D !== NUM_LSTM_FEATURES) throw new Error(`veloReference: rnn inputs must be [T, ${NUM_LSTM_FEATURES}]`);
  const H = state.hidden.shape[1]!;
  if (!sameShape(state.hidden.shape, [T, H]) || !sameShape(state.cell.shape, [T, H])) throw new Error('veloReference: rnn state must be [T, H]');
  const K = theta['rnn_params/rnn_to_controls/w']?.shape[1] ?? 0;
  const x = inputs.data;

  // mix_layer = hk.Linear(H)(x); mix_layer = relu(mix_layer)   -- 'linear': overwritten on the next line upstream
  // (dead code). Its weights exist in theta; the value cannot affect anything, so it is not computed here.
  thetaData(theta, 'rnn_params/linear/w', [D, H]);
  thetaData(theta, 'rnn_params/linear/b', [H]);
  // mix_layer = hk.Linear(H)(x); mix_layer = relu(mix_layer)   -- 'linear_1'
  const mix = relu(linear(x, T, D, thetaData(theta, 'rnn_params/linear_1/w', [D, H]), thetaData(theta, 'rnn_params/linear_1/b', [H]), H));
  // v = jnp.max(mix_layer, axis=0, keepdims=True)   [1, H]
  const v = new Float64Array(H).fill(-Infinity);
  for (let t = 0; t < T; t++) for (let j = 0; j < H; j++) v[j] = Math.max(v[j]!, mix[t * H + j]!); // NaN propagates, as in jnp.max
  // x = hk.Linear(H)(x) + v   -- 'linear_2'
  const xm = linear(x, T, D, thetaData(theta, 'rnn_params/linear_2/w', [D, H]), thetaData(theta, 'rnn_params/linear_2/b', [H]), H);
  for (let t = 0; t < T; t++) for (let j = 0; j < H; j++) xm[t * H + j]! += v[j]!;

  // rnn_out, state = hk.LSTM(H, name="rnn")(x, state):
  //   x_and_h = jnp.concatenate([inputs, prev_state.hidden], axis=-1)
  const xh = new Float64Array(T * 2 * H);
  for (let t = 0; t < T; t++) {
    xh.set(xm.subarray(t * H, (t + 1) * H), t * 2 * H);
    xh.set(state.hidden.data.subarray(t * H, (t + 1) * H), t * 2 * H + H);
  }
  //   gated = hk.Linear(4 * H)(x_and_h)   -- 'rnn/~/linear'
  const gated = linear(
    xh,
    T,
    2 * H,
    thetaData(theta, 'rnn_params/rnn/~/linear/w', [2 * H, 4 * H]),
    thetaData(theta, 'rnn_params/rnn/~/linear/b', [4 * H]),
    4 * H,
  );
  const hidden = f64([T, H]);
  const cell = f64([T, H]);
  for (let t = 0; t < T; t++) {
    const row = t * 4 * H;
    for (let j = 0; j < H; j++) {
      //   i, g, f, o = jnp.split(gated, indices_or_sections=4, axis=-1)
      const gi = gated[row + j]!;
      const gg = gated[row + H + j]!;
      const gf = gated[row + 2 * H + j]!;
      const go = gated[row + 3 * H + j]!;
      //   f = jax.nn.sigmoid(f + 1)
      const f = sigmoid(gf + 1);
      //   c = f * prev_state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
      const c = f * state.cell.data[t * H + j]! + sigmoid(gi) * Math.tanh(gg);
      //   h = jax.nn.sigmoid(o) * jnp.tanh(c)
      cell.data[t * H + j] = c;
      hidden.data[t * H + j] = sigmoid(go) * Math.tanh(c);
    }
  }
  // controls = hk.Linear(param_inits, name="rnn_to_controls")(rnn_out)
  const controls = f64(
    [T, K],
    linear(hidden.data, T, H, thetaData(theta, 'rnn_params/rnn_to_controls/w', [H, K]), thetaData(theta, 'rnn_params/rnn_to_controls/b', [K]), K),
  );
  // lr_mult = jnp.squeeze(hk.Linear(1, name="step_size")(rnn_out), -1)
  const lrMult = linear(hidden.data, T, H, thetaData(theta, 'rnn_params/step_size/w', [H, 1]), thetaData(theta, 'rnn_params/step_size/b', [1]), 1);
  return { controls, lrMult, state: { hidden, cell } };
}

// ---------------------------------------------------------------------------------------------------------------------
// Accumulators (common.py), vectorized over decays with the decay axis last.

/** One tensor's accumulators. Empty ones have upstream's shape [0, 3] (jnp.asarray([]) vmapped over the decays). */
export interface RefTensorAccum {
  /** mom_rolling.m: [...shape, 3]. */
  m: F64;
  /** rms_rolling.rms: [...shape, 1]. */
  rms: F64;
  /** fac_rolling.v_row: [...delete(shape, d0), 3] when factored, else [0, 3]. */
  vRow: F64;
  /** fac_rolling.v_col: [...delete(shape, d1), 3] when factored, else [0, 3]. */
  vCol: F64;
  /** fac_rolling.v_diag: [...shape, 3] when not factored, else [0, 3]. */
  vDiag: F64;
}

/** vec_rolling_mom / vec_rolling_rms / vec_factored_rolling init: zeros. */
function accumInit(shape: number[]): RefTensorAccum {
  const dims = refFactoredDims(shape);
  const empty = () => f64([0, NA]);
  if (dims) {
    const [d1, d0] = dims;
    // vr_shape = onp.delete(shape, d0); vc_shape = onp.delete(shape, d1)
    return {
      m: f64([...shape, NM]),
      rms: f64([...shape, RMS_DECAYS.length]),
      vRow: f64([...deleteAxis(shape, d0), NA]),
      vCol: f64([...deleteAxis(shape, d1), NA]),
      vDiag: empty(),
    };
  }
  return { m: f64([...shape, NM]), rms: f64([...shape, RMS_DECAYS.length]), vRow: empty(), vCol: empty(), vDiag: f64([...shape, NA]) };
}

/**
 * The factored preconditioner's factors from v_row/v_col (both common.factored_rolling.update_one and _ff_mod):
 *   reduced_d1 = d1 - 1 if d1 > d0 else d1
 *   row_col_mean = jnp.mean(v_row, axis=reduced_d1, keepdims=True)
 *   row_factor = safe_rsqrt(v_row / (row_col_mean + 1e-9))
 *   col_factor = safe_rsqrt(v_col)
 * Returns them expanded to [...shape, 3] (row_factor at d0, col_factor at d1), flat.
 */
function factoredFactors(shape: number[], d1: number, d0: number, vRow: F64, vCol: F64): { row: Float64Array; col: Float64Array } {
  const reducedD1 = d1 > d0 ? d1 - 1 : d1;
  const rowColMean = meanAxis(vRow, reducedD1);
  const rcmMap = dropAxisIndexMap(vRow.shape, reducedD1);
  const rowFactor = vRow.data.map((v, j) => safeRsqrt(v / (rowColMean.data[rcmMap[j]!]! + 1e-9)));
  const colFactor = vCol.data.map((v) => safeRsqrt(v));
  // jnp.expand_dims(row_factor, axis=d0), jnp.expand_dims(col_factor, axis=d1), broadcast against [...shape, 3]
  const n = numel(shape);
  const map0 = dropAxisIndexMap(shape, d0);
  const map1 = dropAxisIndexMap(shape, d1);
  const row = new Float64Array(n * NA);
  const col = new Float64Array(n * NA);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < NA; k++) {
      row[i * NA + k] = rowFactor[map0[i]! * NA + k]!;
      col[i * NA + k] = colFactor[map1[i]! * NA + k]!;
    }
  return { row, col };
}

/** The three accumulator updates for one tensor with (clipped) gradient g. Returns the new accumulators and fac_g = y. */
function accumUpdate(acc: RefTensorAccum, g: F64): { next: RefTensorAccum; facG: F64 } {
  const shape = g.shape;
  const n = numel(shape);
  // rolling_mom: m = decay * m + (1 - decay) * g
  const m = f64(acc.m.shape);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < NM; k++) {
      const d = MOMENTUM_DECAYS[k]!;
      m.data[i * NM + k] = d * acc.m.data[i * NM + k]! + (1 - d) * g.data[i]!;
    }
  // rolling_rms: clip_decay = clip(decay, 0, 1); rms = clip_decay * rms + (1 - clip_decay) * (g * g)
  const NR = RMS_DECAYS.length;
  const rms = f64(acc.rms.shape);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < NR; k++) {
      const d = clip(RMS_DECAYS[k]!, 0, 1);
      rms.data[i * NR + k] = d * acc.rms.data[i * NR + k]! + (1 - d) * (g.data[i]! * g.data[i]!);
    }
  // factored_rolling.update_one: clip_decay_rate = clip(decay_rate, 0, 1); mixing_rate = 1 - clip_decay_rate;
  // grad_sqr = g * g + epsilon (1e-30)
  const gradSqr = f64(
    shape,
    g.data.map((v) => v * v + 1e-30),
  );
  const facG = f64([...shape, NA]);
  const dims = refFactoredDims(shape);
  if (dims) {
    const [d1, d0] = dims;
    // new_v_row = clip_decay_rate * v_row + mixing_rate * jnp.mean(grad_sqr, axis=d0)
    // new_v_col = clip_decay_rate * v_col + mixing_rate * jnp.mean(grad_sqr, axis=d1)
    const meanD0 = meanAxis(gradSqr, d0);
    const meanD1 = meanAxis(gradSqr, d1);
    const vRow = f64(acc.vRow.shape);
    const vCol = f64(acc.vCol.shape);
    for (let j = 0; j < meanD0.data.length; j++)
      for (let k = 0; k < NA; k++) {
        const d = clip(ADAFACTOR_DECAYS[k]!, 0, 1);
        vRow.data[j * NA + k] = d * acc.vRow.data[j * NA + k]! + (1 - d) * meanD0.data[j]!;
      }
    for (let j = 0; j < meanD1.data.length; j++)
      for (let k = 0; k < NA; k++) {
        const d = clip(ADAFACTOR_DECAYS[k]!, 0, 1);
        vCol.data[j * NA + k] = d * acc.vCol.data[j * NA + k]! + (1 - d) * meanD1.data[j]!;
      }
    // y = g * jnp.expand_dims(row_factor, axis=d0) * jnp.expand_dims(col_factor, axis=d1)   (from the NEW v_row/v_col)
    const { row, col } = factoredFactors(shape, d1, d0, vRow, vCol);
    for (let i = 0; i < n; i++) for (let k = 0; k < NA; k++) facG.data[i * NA + k] = g.data[i]! * row[i * NA + k]! * col[i * NA + k]!;
    return { next: { m, rms, vRow, vCol, vDiag: f64(acc.vDiag.shape) }, facG };
  }
  // new_v = clip_decay_rate * v_full + mixing_rate * grad_sqr; y = g * safe_rsqrt(new_v + 1e-9)
  const vDiag = f64(acc.vDiag.shape);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < NA; k++) {
      const d = clip(ADAFACTOR_DECAYS[k]!, 0, 1);
      const v = d * acc.vDiag.data[i * NA + k]! + (1 - d) * gradSqr.data[i]!;
      vDiag.data[i * NA + k] = v;
      facG.data[i * NA + k] = g.data[i]! * safeRsqrt(v + 1e-9);
    }
  return { next: { m, rms, vRow: f64(acc.vRow.shape), vCol: f64(acc.vCol.shape), vDiag }, facG };
}

// ---------------------------------------------------------------------------------------------------------------------
// _ff_mod: the per-parameter MLP and the step.

/**
 * HyperV2._ff_mod(ff_param, extra_step_mult=lr_mult, p, g, m, rms, fac_g, v_col, v_row, v_diag) for one tensor, with the
 * interpolated weights `ff` (keys w0__0..w0__13, b0, w1, b1, w2, b2). Shapes use the reshaped p ([1] for a scalar).
 */
function ffMod(
  ff: Record<string, Float64Array>,
  F: number,
  lrMult: number,
  pIn: F64,
  g: F64,
  acc: RefTensorAccum,
  facG: F64,
): { newP: F64; inputs: F64; direction: F64; magnitude: F64 } {
  // if len(p.shape) == 0: expand every argument at axis 0 (the data layout does not change)
  const shape = pIn.shape.length === 0 ? [1] : pIn.shape;
  const n = numel(shape);
  const p = pIn.data;
  const m = acc.m.data;
  const rms = acc.rms.data;
  const x = new Float64Array(n * NUM_FF_CHANNELS);
  const dims = refFactoredDims(shape); // factored_dims(g.shape)
  let map0: Int32Array | undefined;
  let map1: Int32Array | undefined;
  let factors: { row: Float64Array; col: Float64Array } | undefined;
  if (dims) {
    const [d1, d0] = dims;
    map0 = dropAxisIndexMap(shape, d0);
    map1 = dropAxisIndexMap(shape, d1);
    factors = factoredFactors(shape, d1, d0, acc.vRow, acc.vCol);
  }
  for (let i = 0; i < n; i++) {
    const gi = g.data[i]!;
    const ri = rms[i]!;
    const row = x.subarray(i * NUM_FF_CHANNELS, (i + 1) * NUM_FF_CHANNELS);
    let c = 0;
    row[c++] = gi; // batch_g = expand_dims(g, -1)
    row[c++] = clip(gi, -0.1, 0.1); // clip_batch_g
    row[c++] = p[i]!; // batch_p
    for (let k = 0; k < NM; k++) row[c++] = m[i * NM + k]!; // m
    row[c++] = ri; // rms
    const rs = rsqrt(ri + 1e-6); // rsqrt = lax.rsqrt(rms + 1e-6)
    for (let k = 0; k < NM; k++) row[c++] = m[i * NM + k]! * rs; // norm_g = m * rsqrt
    row[c++] = rs; // rsqrt
    for (let k = 0; k < NA; k++) row[c++] = facG.data[i * NA + k]!; // fac_g
    row[c++] = gi * rs; // rms_norm_g = expand_dims(g, -1) * rsqrt
    if (dims && map0 && map1 && factors) {
      // row_feat = tile(expand_dims(fac_vec_row, axis=d0)); col_feat = tile(expand_dims(fac_vec_col, axis=d1))
      const rowFeat = (k: number) => acc.vRow.data[map0[i]! * NA + k]!;
      const colFeat = (k: number) => acc.vCol.data[map1[i]! * NA + k]!;
      for (let k = 0; k < NA; k++) row[c++] = rowFeat(k); // with_fac_rms: row_feat
      for (let k = 0; k < NA; k++) row[c++] = colFeat(k); // with_fac_rms: col_feat
      for (let k = 0; k < NA; k++) row[c++] = rsqrt(rowFeat(k) + 1e-8); // with_fac_rsqrt: lax.rsqrt(row_feat + 1e-8)
      for (let k = 0; k < NA; k++) row[c++] = rsqrt(colFeat(k) + 1e-8); // with_fac_rsqrt: lax.rsqrt(col_feat + 1e-8)
      // fac_mom_mult = m * expand_dims(row_factor, axis=d0) * expand_dims(col_factor, axis=d1)
      for (let k = 0; k < NA; k++) row[c++] = m[i * NM + k]! * factors.row[i * NA + k]! * factors.col[i * NA + k]!;
    } else {
      const v = (k: number) => acc.vDiag.data[i * NA + k]!;
      for (let k = 0; k < NA; k++) row[c++] = v(k); // with_fac_rms: fac_vec_v
      for (let k = 0; k < NA; k++) row[c++] = v(k); // with_fac_rms: fac_vec_v (again)
      for (let k = 0; k < NA; k++) row[c++] = rsqrt(v(k) + 1e-8); // with_fac_rsqrt: lax.rsqrt(fac_vec_v + 1e-8)
      for (let k = 0; k < NA; k++) row[c++] = rsqrt(v(k) + 1e-8); // with_fac_rsqrt (again)
      for (let k = 0; k < NA; k++) row[c++] = m[i * NM + k]! * v(k) ** -0.5; // fac_mom_mult = m * (fac_vec_v)**-0.5
    }
  }

  // inp_stack = [_second_moment_normalizer(i, axis=range(len(p.shape))) for i in inps]:
  //   x * rsqrt(1e-5 + mean(x^2 over the parameter axes)), per channel
  const scale = new Float64Array(NUM_FF_CHANNELS);
  for (let i = 0; i < n; i++) for (let c = 0; c < NUM_FF_CHANNELS; c++) scale[c]! += x[i * NUM_FF_CHANNELS + c]! ** 2;
  for (let c = 0; c < NUM_FF_CHANNELS; c++) scale[c] = rsqrt(1e-5 + scale[c]! / n);

  // The MLP: o = sum_i inp_stack[i] @ w0__i + b0, relu, @ w1 + b1, relu, @ w2 + b2 (no relu on the last layer).
  // The first layer's per-group weights stacked in group order are one [30, F] matrix.
  const w0 = new Float64Array(NUM_FF_CHANNELS * F);
  let off = 0;
  FF_GROUP_CHANNELS.forEach((ch, gi) => {
    w0.set(ff[`w0__${gi}`]!, off);
    off += ch * F;
  });
  const b0 = ff['b0']!;
  const w1 = ff['w1']!;
  const b1 = ff['b1']!;
  const w2 = ff['w2']!;
  const b2 = ff['b2']!;
  const direction = f64(shape);
  const magnitude = f64(shape);
  const xn = new Float64Array(NUM_FF_CHANNELS);
  const h0 = new Float64Array(F);
  const h1 = new Float64Array(F);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < NUM_FF_CHANNELS; c++) xn[c] = x[i * NUM_FF_CHANNELS + c]! * scale[c]!;
    for (let f = 0; f < F; f++) {
      let s = 0;
      for (let c = 0; c < NUM_FF_CHANNELS; c++) s += xn[c]! * w0[c * F + f]!;
      h0[f] = Math.max(s + b0[f]!, 0); // relu (NaN stays NaN)
    }
    for (let f = 0; f < F; f++) {
      let s = 0;
      for (let e = 0; e < F; e++) s += h0[e]! * w1[e * F + f]!;
      h1[f] = Math.max(s + b1[f]!, 0); // relu
    }
    // direction = o[..., 0]; magnitude_param = o[..., 1]   (o[..., 2] is unused)
    let o0 = 0;
    let o1 = 0;
    for (let e = 0; e < F; e++) {
      o0 += h1[e]! * w2[e * 3]!;
      o1 += h1[e]! * w2[e * 3 + 1]!;
    }
    direction.data[i] = o0 + b2[0]!;
    magnitude.data[i] = o1 + b2[1]!;
  }

  // mag_param = jnp.exp(magnitude_param * self.exp_mult); param_scale = jnp.sqrt(jnp.mean(jnp.square(p)) + 1e-9)
  let sumP2 = 0;
  for (let i = 0; i < n; i++) sumP2 += p[i]! ** 2;
  const paramScale = Math.sqrt(sumP2 / n + 1e-9);
  const newP = f64(pIn.shape);
  for (let i = 0; i < n; i++) {
    const magParam = Math.exp(magnitude.data[i]! * EXP_MULT);
    // step = direction * (param_scale * mag_param) * self.step_mult; step = extra_step_mult * step; new_p = p - step
    const step = lrMult * (direction.data[i]! * (paramScale * magParam) * STEP_MULT);
    newP.data[i] = p[i]! - step;
  }
  return { newP, inputs: f64([n, NUM_FF_CHANNELS], x), direction, magnitude };
}

/** apply_one.interpolate_theta: 100. * jnp.mean(ff_p * control_param[:, None, ...], axis=0) for every ff_mod_stack leaf. */
function interpolateFf(theta: Record<string, F64>, controls: Float64Array): Record<string, Float64Array> {
  const K = controls.length;
  const out: Record<string, Float64Array> = {};
  for (const leaf of FF_LEAVES) {
    const t = theta[FF_PREFIX + leaf]!;
    const size = t.data.length / K;
    const acc = new Float64Array(size);
    for (let k = 0; k < K; k++) {
      const c = controls[k]!;
      for (let j = 0; j < size; j++) acc[j]! += t.data[k * size + j]! * c;
    }
    out[leaf] = acc.map((v) => 100 * (v / K));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// The optimizer: opt_fn(theta).init / .update.

/** HyperV2.opt_fn's State, less params and model_state (refUpdate takes the params as an argument). */
export interface RefState {
  /** "iteration". */
  iteration: number;
  /** "num_steps". */
  numSteps: number;
  /** mom_rolling / rms_rolling / fac_rolling, per tensor. */
  accum: Record<string, RefTensorAccum>;
  /** "lstm_hidden_state": one row per tensor, in the order of the params' keys. */
  lstm: { hidden: F64; cell: F64 };
  /** "loss_buffer". */
  lossBuffer: RefLossBuffer;
}

/** opt_fn(theta).init(params, num_steps): zero accumulators, iteration 0, theta's LSTM state tiled, the loss buffer. */
export function refInit(theta: Record<string, F64>, params: Record<string, F64>, numSteps: number, config: VeloRefConfig = RELEASED_VELO_REF_CONFIG): RefState {
  checkTheta(theta, config);
  const names = Object.keys(params);
  const H = config.lstmHiddenSize;
  // lstm_hidden_state = tree_map(lambda x: jnp.tile(x, [n_states] + [1] * len(x.shape[1:])), theta["lstm_init_state"])
  const tile = (key: string) => {
    const row = thetaData(theta, key, [1, H]);
    const out = f64([names.length, H]);
    for (let t = 0; t < names.length; t++) out.data.set(row, t * H);
    return out;
  };
  const accum: Record<string, RefTensorAccum> = {};
  for (const name of names) accum[name] = accumInit(params[name]!.shape);
  return {
    iteration: 0,
    numSteps,
    accum,
    lstm: { hidden: tile('lstm_init_state/hidden'), cell: tile('lstm_init_state/cell') },
    // loss_buffer = buffer_loss_fns.init(10) if use_bugged_loss_features else buffer_loss_fns.init(num_steps)
    lossBuffer: refLossBufferInit(config.useBuggedLossFeatures ? 10 : numSteps),
  };
}

export interface RefIntermediates {
  /** buffer_loss_fns.features(next_loss_buffer): [9]. */
  lossFeatures: Float64Array;
  /** The stacked lstm_features_for_tensor rows: [T, 30]. */
  lstmInputs: F64;
  /** control_params: [T, K]. */
  controls: F64;
  /** lr_mult: [T]. */
  lrMult: Float64Array;
  /** _ff_mod's 30 raw input channels (before _second_moment_normalizer), per tensor: [N, 30], N = numel (1 for a scalar). */
  perParamInputs: Record<string, F64>;
  /** o[..., 0], shaped like the (reshaped) parameter: [1] for a scalar. */
  direction: Record<string, F64>;
  /** o[..., 1] (magnitude_param, before exp), shaped like direction. */
  magnitude: Record<string, F64>;
}

/** opt_fn(theta).update(opt_state, grads, loss) with opt_state.params = params. Tensors are taken in the params' key order. */
export function refUpdate(
  theta: Record<string, F64>,
  state: RefState,
  params: Record<string, F64>,
  grads: Record<string, F64>,
  loss: number,
  config: VeloRefConfig = RELEASED_VELO_REF_CONFIG,
): { state: RefState; newParams: Record<string, F64>; intermediates: RefIntermediates } {
  checkTheta(theta, config);
  const names = Object.keys(params);
  for (const name of names) {
    const g = grads[name];
    const acc = state.accum[name];
    if (!g || !sameShape(g.shape, params[name]!.shape)) throw new Error(`veloReference: grads.${name} is missing or differs in shape from params.${name}`);
    if (!acc) throw new Error(`veloReference: state has no accumulators for ${name}`);
    if (params[name]!.data.length !== numel(params[name]!.shape) || g.data.length !== numel(g.shape)) throw new Error(`veloReference: ${name}: data length`);
  }
  if (Object.keys(grads).length !== names.length) throw new Error('veloReference: grads and params have different keys');
  const T = names.length;

  // next_loss_buffer = parent.buffer_loss_fns.update(opt_state.loss_buffer, loss)
  const nextLossBuffer = refLossBufferUpdate(state.lossBuffer, loss);
  // to_lstm_from_loss = parent.buffer_loss_fns.features(next_loss_buffer)
  const lossFeatures = refLossFeatures(nextLossBuffer);
  // grads = jax.tree_util.tree_map(lambda x: jnp.clip(x, -1000., 1000.), grads)
  const clipped: Record<string, F64> = {};
  for (const name of names)
    clipped[name] = f64(
      grads[name]!.shape,
      grads[name]!.data.map((v) => clip(v, -1000, 1000)),
    );
  // fraction_trained = opt_state.iteration / num_steps
  const fractionTrained = state.iteration / state.numSteps;
  // rnn_inputs = tree_map(ff, opt_state.params, grads, m, rms): OLD params, CLIPPED grads, OLD m and rms
  const lstmInputs = f64([T, NUM_LSTM_FEATURES]);
  names.forEach((name, t) => {
    const acc = state.accum[name]!;
    lstmInputs.data.set(refLstmFeatures(params[name]!, clipped[name]!, acc.m, acc.rms, fractionTrained, lossFeatures), t * NUM_LSTM_FEATURES);
  });
  // control_params, lr_mult, next_lstm_hidden_state = parent.rnn.apply(theta["rnn_params"], stack, lstm_hidden_state)
  const rnn = refRnn(theta, lstmInputs, state.lstm);
  // if not use_bugged_next_lstm_state: lstm_hidden_state = next_lstm_hidden_state   (rnn_state_decay is 0)
  const nextLstm = config.useBuggedNextLstmState ? state.lstm : rnn.state;

  // next_mom_rolling, next_rms_rolling, (next_adafac_rolling, fac_g) = the accumulator updates with the clipped grads
  const K = rnn.controls.shape[1]!;
  const F = config.ffHiddenSize;
  const accum: Record<string, RefTensorAccum> = {};
  const newParams: Record<string, F64> = {};
  const perParamInputs: Record<string, F64> = {};
  const direction: Record<string, F64> = {};
  const magnitude: Record<string, F64> = {};
  names.forEach((name, t) => {
    const { next, facG } = accumUpdate(state.accum[name]!, clipped[name]!);
    accum[name] = next;
    // apply_one: interpolate theta["ff_mod_stack"] with this tensor's controls, then _ff_mod with the OLD p, clipped g,
    // NEW m, rms, fac_g and NEW v_col, v_row, v_diag; extra_step_mult = lr_mult.
    const ff = interpolateFf(theta, rnn.controls.data.subarray(t * K, (t + 1) * K));
    const out = ffMod(ff, F, rnn.lrMult[t]!, params[name]!, clipped[name]!, next, facG);
    newParams[name] = out.newP;
    perParamInputs[name] = out.inputs;
    direction[name] = out.direction;
    magnitude[name] = out.magnitude;
  });

  return {
    state: { iteration: state.iteration + 1, numSteps: state.numSteps, accum, lstm: nextLstm, lossBuffer: nextLossBuffer },
    newParams,
    intermediates: { lossFeatures, lstmInputs, controls: rnn.controls, lrMult: rnn.lrMult, perParamInputs, direction, magnitude },
  };
}
