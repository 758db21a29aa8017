// VeLO (Metz et al. 2022, "VeLO: Training Versatile Learned Optimizers by Scaling Up"):
// learned_optimization's HyperV2 (research/general_lopt/hyper_v2.py) as a lopt LearnedOptimizer.
// A per-tensor LSTM reads 30 statistics of each tensor (loss EMAs, fraction of training done,
// momentum/rms spreads, rank) and emits 256 controls and a step multiplier; the controls mix 256
// banks of a tiny per-parameter MLP (30 → 4 → 4 → 3) into that tensor's own MLP, whose direction
// and magnitude outputs give the step lr_mult · param_scale · direction · exp(0.001·magnitude) · 0.001.
import { Optimizer } from '../../optim/optimizer.js';
import { Rng } from '../../random/rng.js';
import type { Params } from '../../tree/params.js';
import { truncatedNormal, validateTheta } from '../theta.js';
import type { LearnedOptimizer, LearnedOptimizerOptions } from '../types.js';
import { resolveVeloConfig, veloInitStd, veloThetaShapes, type VeloConfig } from './config.js';
import { veloTransform } from './veloTransform.js';
import * as tf from '@tensorflow/tfjs-core';

/**
 * VeLO at a configuration (the released one by default: LSTM 512, 256 banks). Its optimizer needs
 * `totalSteps` (the planned run length, ≤ 150,000) and the training loss at every step
 * (`update(grads, state, params, { loss })`; model.fit passes it through asTfjsOptimizer).
 */
export function velo(config: VeloConfig = {}): LearnedOptimizer {
  const resolved = resolveVeloConfig(config);
  const thetaShapes = Object.freeze(veloThetaShapes(resolved));
  const std = veloInitStd(resolved);
  const stored = Object.freeze({ ...resolved });
  return Object.freeze({
    arch: 'velo' as const,
    config: stored,
    thetaShapes,
    outputLayer: ['ff_mod_stack/~/w2', 'ff_mod_stack/~/b2'],
    /** haiku's initialization: weights truncated normal (±2σ, σ = 1/√fan_in), biases and the LSTM state 0. */
    initTheta(seed: number): Params {
      const rng = Rng.from(seed).fork('velo');
      const theta: Params = {};
      for (const [name, shape] of Object.entries(thetaShapes)) {
        const s = std[name];
        theta[name] = s === undefined ? tf.zeros(shape) : truncatedNormal(rng.fork(name), shape, s);
      }
      return theta;
    },
    optimizer(theta: Params, options: LearnedOptimizerOptions = {}): Optimizer {
      validateTheta('velo', theta, thetaShapes, options.population);
      return new Optimizer('velo', { ...stored, ...options }, veloTransform(resolved, theta, options), () => {
        throw new Error('velo: a learned optimizer is serialized through its checkpoint (arch, config and theta; see src/checkpoint), not through toConfig()');
      });
    },
  });
}
