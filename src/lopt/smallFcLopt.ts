// μLO / small_fc_lopt: learned_optimization's AdafacMLPLOpt (DESIGN.md "Learned optimizers").
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import { FRACTION_FEATURES, TIME_FEATURES } from './features.js';
import { mlpThetaShapes, mlpWeightsOf } from './perParamMlp.js';
import { perParamLopt } from './perParamLopt.js';
import { checkConfig, type ConfigRule } from './theta.js';
import type { LearnedOptimizer } from './types.js';

export const SMALL_FC_CHANNELS = 28;
export const SMALL_FC_FEATURES = SMALL_FC_CHANNELS + TIME_FEATURES; // 39
export const MOMENTUM_DECAYS = [0.9, 0.99, 0.999] as const;
export const RMS_DECAYS = [0.999] as const;
export const ADAFACTOR_DECAYS = [0.9, 0.99, 0.999] as const;

export interface SmallFcLoptConfig {
  /** Width of both hidden layers (μLO: 32; the reference's default is 4). */
  hiddenSize?: number;
  /** μLO (true: step multiplier 0.01) or the SP small_fc_lopt (false: 0.001). */
  mup?: boolean;
  /** Overrides the step multiplier implied by `mup`. */
  stepMult?: number;
  /** Multiplier of the magnitude output inside exp (0.001). */
  expMult?: number;
  /**
   * lopt's variant (not in the reference): 9 more inputs, VeLO's embedding of the fraction of the
   * planned run done, tanh(10·(step/totalSteps − c)); the optimizer then needs totalSteps. Default
   * false: exactly μLO.
   */
  fractionFeatures?: boolean;
}

/** Allowed config values. stepMult and expMult scale every step: their ranges keep a file from turning parameters into ±Infinity. */
export const SMALL_FC_CONFIG_KEYS: Record<string, ConfigRule> = {
  hiddenSize: { type: 'number', min: 1, max: 4096, integer: true },
  mup: 'boolean',
  stepMult: { type: 'number', min: 0, max: 1, minExclusive: true },
  expMult: { type: 'number', min: 0, max: 0.1 },
  fractionFeatures: 'boolean',
};

/** β = 1 − (1 − β₀)·exp(10·θ) per member: θ [P, K] → [P, K]. */
export function metaDecays(offsets: tf.Tensor, base: readonly number[], clip: boolean): tf.Tensor2D {
  const oneMinus = tf.tensor1d(base.map((b) => 1 - b));
  const beta = tf.sub(1, tf.mul(tf.exp(tf.mul(offsets, 10)), oneMinus));
  return (clip ? tf.clipByValue(beta, 0, 1) : beta) as tf.Tensor2D;
}

export function smallFcLopt(config: SmallFcLoptConfig = {}): LearnedOptimizer {
  checkConfig('small_fc_lopt', config as Record<string, unknown>, SMALL_FC_CONFIG_KEYS);
  const hiddenSize = config.hiddenSize ?? 32;
  const mup = config.mup ?? true;
  const stepMult = config.stepMult ?? (mup ? 0.01 : 0.001);
  const expMult = config.expMult ?? 0.001;
  const fraction = config.fractionFeatures ?? false;
  const inputs = SMALL_FC_FEATURES + (fraction ? FRACTION_FEATURES : 0);
  const thetaShapes = {
    ...mlpThetaShapes(inputs, hiddenSize),
    'decay/momentum': [MOMENTUM_DECAYS.length],
    'decay/rms': [RMS_DECAYS.length],
    'decay/adafactor': [ADAFACTOR_DECAYS.length],
  };
  return perParamLopt({
    arch: 'small_fc_lopt',
    // The variant's flag is in the config only when set, so μLO's config (and checkpoints) stay as they were.
    config: { hiddenSize, mup, stepMult, expMult, ...(fraction ? { fractionFeatures: true } : {}) },
    thetaShapes,
    fanIn: { 'mlp/w0': inputs, 'mlp/w1': hiddenSize, 'mlp/w2': hiddenSize },
    runtime: {
      name: 'small_fc_lopt',
      kind: 'adafactor',
      momenta: MOMENTUM_DECAYS.length,
      adafactorDecays: ADAFACTOR_DECAYS.length,
      stepMult,
      expMult,
      fractionFeatures: fraction,
      // Momentum decays are not clipped; second-moment and Adafactor decays are (as the reference).
      decays: (theta: Params) => ({
        momentum: metaDecays(theta['decay/momentum']!, MOMENTUM_DECAYS, false),
        rms: metaDecays(theta['decay/rms']!, RMS_DECAYS, true),
        adafactor: metaDecays(theta['decay/adafactor']!, ADAFACTOR_DECAYS, true),
      }),
      mlp: mlpWeightsOf,
    },
  });
}
