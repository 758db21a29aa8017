// MLPLOpt (learned_optimization's mlp_lopt, "LOLv2"): g, p and 6 fixed momenta, normalized per
// tensor, plus the 11 time features, through a per-parameter MLP 19 → H → H → 2.
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import { TIME_FEATURES } from './features.js';
import { mlpThetaShapes, mlpWeightsOf } from './perParamMlp.js';
import { perParamLopt } from './perParamLopt.js';
import { checkConfig, type ConfigRule } from './theta.js';
import type { LearnedOptimizer } from './types.js';

export const MLP_LOPT_DECAYS = [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999] as const;
export const MLP_LOPT_FEATURES = 2 + MLP_LOPT_DECAYS.length + TIME_FEATURES; // 19

export interface MlpLoptConfig {
  hiddenSize?: number;
  stepMult?: number;
  expMult?: number;
}

export const MLP_LOPT_CONFIG_KEYS: Record<string, ConfigRule> = {
  hiddenSize: { type: 'number', min: 1, max: 4096, integer: true },
  stepMult: { type: 'number', min: 0, max: 1, minExclusive: true },
  expMult: { type: 'number', min: 0, max: 0.1 },
};

export function mlpLopt(config: MlpLoptConfig = {}): LearnedOptimizer {
  checkConfig('mlp_lopt', config as Record<string, unknown>, MLP_LOPT_CONFIG_KEYS);
  const hiddenSize = config.hiddenSize ?? 32;
  const stepMult = config.stepMult ?? 0.001;
  const expMult = config.expMult ?? 0.001;
  return perParamLopt({
    arch: 'mlp_lopt',
    config: { hiddenSize, stepMult, expMult },
    thetaShapes: mlpThetaShapes(MLP_LOPT_FEATURES, hiddenSize),
    fanIn: { 'mlp/w0': MLP_LOPT_FEATURES, 'mlp/w1': hiddenSize, 'mlp/w2': hiddenSize },
    runtime: {
      name: 'mlp_lopt',
      kind: 'momentum',
      momenta: MLP_LOPT_DECAYS.length,
      adafactorDecays: 0,
      stepMult,
      expMult,
      fractionFeatures: false,
      // Fixed decays, the same for every member.
      decays: (theta: Params) => {
        const P = theta['mlp/b2']!.shape[0]!;
        return { momentum: tf.tile(tf.tensor2d([Array.from(MLP_LOPT_DECAYS)]), [P, 1]) as tf.Tensor2D };
      },
      mlp: mlpWeightsOf,
    },
  });
}
