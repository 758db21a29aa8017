// A short held-out check after meta-training: the learned optimizer (one trial) against Adam at a
// few learning rates (the best one reported) on one task, same initialization and batches.
import * as tf from '@tensorflow/tfjs-core';
import { adam } from '../optim/baselines/adam.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LearnedOptimizer } from '../lopt/types.js';
import type { Params } from '../tree/params.js';
import { disposeState } from '../tree/stateTree.js';
import { lossAndGrads } from '../../tasks/lossAndGrads.js';
import { taskFromName } from '../../tasks/registry.js';
import { unflattenTheta } from './thetaVector.js';

export interface ComparisonRow {
  optimizer: string;
  firstLoss: number;
  finalLoss: number;
  /** Mean training loss over the last 10% of steps (less noisy than the final batch). */
  tailLoss: number;
  testLoss: number;
}

function train(taskName: string, opt: Optimizer, steps: number, seed: number): Omit<ComparisonRow, 'optimizer'> {
  const task = taskFromName(taskName);
  let params: Params = task.init([seed]);
  let state = opt.init(params);
  const stream = task.batches('train', [seed]);
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    const batch = stream.next();
    const { losses: value, grads } = lossAndGrads(task, params, batch);
    losses.push(value.dataSync()[0]!);
    ({ params, state } = opt.step(params, grads, state, { loss: value }));
    tf.dispose([value, ...Object.values(grads), ...Object.values(batch)]);
  }
  const test = task.batches('test', [seed + 1]).next();
  const testLoss = tf.tidy(() => task.loss(params, test).dataSync()[0]!);
  tf.dispose([...Object.values(test), ...Object.values(params)]);
  disposeState(state.inner);
  const tail = losses.slice(Math.floor(steps * 0.9));
  return {
    firstLoss: losses[0]!,
    finalLoss: losses[steps - 1]!,
    tailLoss: tail.reduce((a, b) => a + b, 0) / tail.length,
    testLoss,
  };
}

export function compareWithAdam(
  lo: LearnedOptimizer,
  theta: Float32Array,
  o: { task: string; steps: number; adamLrs: number[]; seed: number },
): ComparisonRow[] {
  const task = taskFromName(o.task);
  const thetaParams = unflattenTheta(lo, theta);
  const learned = lo.optimizer(thetaParams, { mupScale: { ...task.mupScale }, totalSteps: o.steps });
  const rows: ComparisonRow[] = [
    { optimizer: `learned (${lo.arch})`, ...train(o.task, learned, o.steps, o.seed) },
    ...o.adamLrs.map((lr) => ({ optimizer: `adam lr=${lr}`, ...train(o.task, adam({ learningRate: lr }), o.steps, o.seed) })),
  ];
  tf.dispose(Object.values(thetaParams));
  return rows;
}
