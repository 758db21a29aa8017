// VeLO's configuration and meta-parameter layout: learned_optimization's HyperV2
// (learned_optimization/research/general_lopt/hyper_v2.py) at the released configuration.
import { checkConfig, type ConfigRule } from '../theta.js';

export interface VeloConfig {
  /** Width of the per-tensor LSTM (released VeLO: 512; HyperV2's default 128). */
  lstmHiddenSize?: number;
  /** Banks of per-parameter MLP weights the controls interpolate (released: 256). */
  paramInits?: number;
  /** Width of the per-parameter MLP's two hidden layers (4). */
  ffHiddenSize?: number;
  /** HyperV2's flag: the loss buffer's half-lives planned for 10 steps instead of the run (released: false). */
  useBuggedLossFeatures?: boolean;
  /** HyperV2's flag: the LSTM state is not carried to the next step (old checkpoints; released: false). */
  useBuggedNextLstmState?: boolean;
}

export type ResolvedVeloConfig = Required<VeloConfig>;

export const RELEASED_VELO_CONFIG: ResolvedVeloConfig = Object.freeze({
  lstmHiddenSize: 512,
  paramInits: 256,
  ffHiddenSize: 4,
  useBuggedLossFeatures: false,
  useBuggedNextLstmState: false,
});

export const VELO_CONFIG_KEYS: Record<keyof VeloConfig, ConfigRule> = {
  lstmHiddenSize: { type: 'number', min: 1, max: 4096, integer: true },
  paramInits: { type: 'number', min: 1, max: 4096, integer: true },
  ffHiddenSize: { type: 'number', min: 1, max: 256, integer: true },
  useBuggedLossFeatures: 'boolean',
  useBuggedNextLstmState: 'boolean',
};

/** The config with every key filled in (the released values where absent), after validation. */
export function resolveVeloConfig(config: VeloConfig): ResolvedVeloConfig {
  checkConfig('velo', config as Record<string, unknown>, VELO_CONFIG_KEYS);
  return { ...RELEASED_VELO_CONFIG, ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) };
}

/** Per-tensor LSTM inputs: fraction trained 9, loss 9, mean rms 1, rank 5, var m 3, var rms 3. */
export const LSTM_INPUTS = 30;
/** Per-parameter MLP input channels, in HyperV2's 14 groups (g, clip g, p, m, rms, …). */
export const VELO_GROUP_CHANNELS = [1, 1, 1, 3, 1, 3, 1, 3, 1, 3, 3, 3, 3, 3] as const;
export const VELO_CHANNELS = 30;
/** The MLP's outputs: direction, magnitude and an unused third. */
export const VELO_OUTPUTS = 3;
export const MOMENTUM_DECAYS = [0.9, 0.99, 0.999] as const;
export const RMS_DECAYS = [0.999] as const;
export const ADAFACTOR_DECAYS = [0.9, 0.99, 0.999] as const;
/** The step: lr_mult · param_scale · direction · exp(EXP_MULT · magnitude) · STEP_MULT. */
export const EXP_MULT = 0.001;
export const STEP_MULT = 0.001;
/** Gradients are clipped to ±GRAD_CLIP before anything reads them. */
export const GRAD_CLIP = 1000;
/**
 * The released wrapper (prefab.LearnedOptimizer) switches to gradient accumulation above this many
 * steps: VeLO was meta-trained on runs up to this length.
 */
export const MAX_TRAINING_STEPS = 150_000;

/**
 * Meta-parameter names and shapes, named as the released files' flattened keys (haiku module paths):
 * the per-parameter MLP banks `ff_mod_stack/~/…` [K, …], the LSTM's initial state, and the
 * per-tensor network `rnn_params/…` (`linear` is HyperV2's dead first mix layer: stored, never used).
 */
export function veloThetaShapes(c: ResolvedVeloConfig): Record<string, number[]> {
  const H = c.lstmHiddenSize;
  const K = c.paramInits;
  const F = c.ffHiddenSize;
  const shapes: Record<string, number[]> = {};
  VELO_GROUP_CHANNELS.forEach((n, i) => (shapes[`ff_mod_stack/~/w0__${i}`] = [K, n, F]));
  shapes['ff_mod_stack/~/b0'] = [K, F];
  shapes['ff_mod_stack/~/w1'] = [K, F, F];
  shapes['ff_mod_stack/~/b1'] = [K, F];
  shapes['ff_mod_stack/~/w2'] = [K, F, VELO_OUTPUTS];
  shapes['ff_mod_stack/~/b2'] = [K, VELO_OUTPUTS];
  shapes['lstm_init_state/hidden'] = [1, H];
  shapes['lstm_init_state/cell'] = [1, H];
  for (const layer of ['linear', 'linear_1', 'linear_2']) {
    shapes[`rnn_params/${layer}/w`] = [LSTM_INPUTS, H];
    shapes[`rnn_params/${layer}/b`] = [H];
  }
  shapes['rnn_params/rnn/~/linear/w'] = [2 * H, 4 * H];
  shapes['rnn_params/rnn/~/linear/b'] = [4 * H];
  shapes['rnn_params/rnn_to_controls/w'] = [H, K];
  shapes['rnn_params/rnn_to_controls/b'] = [K];
  shapes['rnn_params/step_size/w'] = [H, 1];
  shapes['rnn_params/step_size/b'] = [1];
  return shapes;
}

/**
 * Standard deviation of each weight's truncated-normal init (biases and the LSTM state start at 0):
 * haiku Linear's 1/√fan_in; the MLP banks use 1/√30 for every first-layer group (HyperV2 takes the
 * fan-in of the whole first layer) and 1/√F after.
 */
export function veloInitStd(c: ResolvedVeloConfig): Record<string, number> {
  const H = c.lstmHiddenSize;
  const F = c.ffHiddenSize;
  const std: Record<string, number> = {};
  VELO_GROUP_CHANNELS.forEach((_, i) => (std[`ff_mod_stack/~/w0__${i}`] = 1 / Math.sqrt(VELO_CHANNELS)));
  std['ff_mod_stack/~/w1'] = 1 / Math.sqrt(F);
  std['ff_mod_stack/~/w2'] = 1 / Math.sqrt(F);
  for (const layer of ['linear', 'linear_1', 'linear_2']) std[`rnn_params/${layer}/w`] = 1 / Math.sqrt(LSTM_INPUTS);
  std['rnn_params/rnn/~/linear/w'] = 1 / Math.sqrt(2 * H);
  std['rnn_params/rnn_to_controls/w'] = 1 / Math.sqrt(H);
  std['rnn_params/step_size/w'] = 1 / Math.sqrt(H);
  return std;
}
