// learned_optimization's LearnableSGD: one meta-parameter, the log learning rate. The smallest
// learned optimizer: its meta-gradient on a quadratic is known in closed form, which is what the
// estimator tests check against.
import * as tf from '@tensorflow/tfjs-core';
import { Optimizer } from '../optim/optimizer.js';
import { mupScaleOf } from '../optim/transforms/scaleByMup.js';
import type { GradientTransformation } from '../optim/transform.js';
import type { Params } from '../tree/params.js';
import { checkConfig, validateTheta } from './theta.js';
import type { LearnedOptimizer, LearnedOptimizerOptions } from './types.js';

export interface LearnableSgdConfig {
  /** Learning rate of initTheta: theta = log(initialLr). */
  initialLr?: number;
}

const SHAPES = Object.freeze({ log_lr: Object.freeze([1]) as readonly number[] });

export function learnableSgd(config: LearnableSgdConfig = {}): LearnedOptimizer {
  checkConfig('learnable_sgd', config as Record<string, unknown>, { initialLr: { type: 'number', min: 0, max: 1e3, minExclusive: true } });
  const initialLr = config.initialLr ?? 0.01;
  if (!(initialLr > 0)) throw new Error(`learnable_sgd: initialLr must be > 0; got ${initialLr}`);
  return Object.freeze({
    arch: 'learnable_sgd' as const,
    config: Object.freeze({ initialLr }),
    thetaShapes: SHAPES,
    outputLayer: [],
    initTheta: (): Params => ({ log_lr: tf.tensor1d([Math.log(initialLr)]) }),
    optimizer(theta: Params, options: LearnedOptimizerOptions = {}): Optimizer {
      validateTheta('learnable_sgd', theta, SHAPES, options.population);
      const P = options.population;
      if (options.memberSteps && P === undefined) throw new Error('learnable_sgd: memberSteps needs a population');
      const transform: GradientTransformation<{ count: number | number[] }> = {
        init: () => ({ count: options.memberSteps ? new Array<number>(P!).fill(0) : 0 }),
        update(grads, state) {
          const updates: Params = {};
          for (const [name, g] of Object.entries(grads)) {
            // lr per member: [P, 1, …] against g [P, …]; without a population, one scalar.
            const lr = tf.exp(theta.log_lr!);
            const shaped = P === undefined ? tf.reshape(lr, []) : tf.reshape(lr, [P, ...new Array<number>(g.rank - 1).fill(1)]);
            const memberShape = P === undefined ? g.shape.slice() : g.shape.slice(1);
            const scale = options.mupScale === undefined ? 1 : mupScaleOf(options.mupScale, name, memberShape);
            updates[name] = tf.mul(tf.mul(g, shaped), -scale);
          }
          const c = state.count;
          return { updates, state: { count: Array.isArray(c) ? c.map((x) => x + 1) : c + 1 } };
        },
      };
      return new Optimizer('learnable_sgd', { initialLr, ...options }, transform as GradientTransformation, () => {
        throw new Error('learnable_sgd: a learned optimizer is serialized through its checkpoint, not through toConfig()');
      });
    },
  });
}
