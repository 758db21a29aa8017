// A LearnedOptimizer object around learnedTransform: theta shapes, initialization, validation,
// and the Optimizer it hands out for a given theta.
import { Optimizer } from '../optim/optimizer.js';
import { Rng } from '../random/rng.js';
import type { Params } from '../tree/params.js';
import { learnedTransform, type ArchRuntime, type LearnedTransformOptions } from './learnedTransform.js';
import { truncatedNormal, validateTheta } from './theta.js';
import type { LearnedOptimizer, LearnedOptimizerArch } from './types.js';
import * as tf from '@tensorflow/tfjs-core';

export interface PerParamLoptSpec {
  arch: LearnedOptimizerArch;
  config: Record<string, number | string | boolean>;
  thetaShapes: Record<string, number[]>;
  /** Fan-in of each weight matrix (others are biases or offsets, initialized to 0). */
  fanIn: Record<string, number>;
  runtime: ArchRuntime;
}

export function perParamLopt(spec: PerParamLoptSpec): LearnedOptimizer {
  const thetaShapes = Object.freeze({ ...spec.thetaShapes });
  const config = Object.freeze({ ...spec.config });
  return Object.freeze({
    arch: spec.arch,
    config,
    thetaShapes,
    outputLayer: ['mlp/w2', 'mlp/b2'],
    initTheta(seed: number): Params {
      const rng = Rng.from(seed).fork(spec.arch);
      const theta: Params = {};
      for (const [name, shape] of Object.entries(thetaShapes)) {
        const fanIn = spec.fanIn[name];
        theta[name] = fanIn === undefined ? tf.zeros(shape) : truncatedNormal(rng.fork(name), shape, 1 / Math.sqrt(fanIn));
      }
      return theta;
    },
    /**
     * The optimizer for this theta. Theta's tensors are read at every step (not copied): keep them
     * alive while the optimizer is in use.
     */
    optimizer(theta: Params, options: LearnedTransformOptions = {}): Optimizer {
      validateTheta(spec.arch, theta, thetaShapes, options.population);
      const transform = learnedTransform(spec.runtime, theta, options.population, options);
      return new Optimizer(spec.arch, { ...config, ...options }, transform, () => {
        throw new Error(
          `${spec.arch}: a learned optimizer is serialized through its checkpoint (arch, config and theta; see src/checkpoint), not through toConfig()`,
        );
      });
    },
  });
}
