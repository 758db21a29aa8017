import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPTIMIZERS, type OptimizerName } from '../src/optim/registry.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import { warmupCosine } from '../src/optim/schedules.js';
import { disposeReplaced } from '../src/tree/stateTree.js';
import type { Params } from '../src/tree/params.js';
import { useBackend } from './helpers/backend.js';

beforeAll(async () => {
  await useBackend('wasm');
});

const schedule = warmupCosine({ peak: 1e-2, warmupSteps: 10, totalSteps: 1000 });
const exclude = ['bias'];
// MKOR reads layer statistics besides gradients: its own tests (test/mkor.test.ts) cover leaks and populations.
type GradientOnly = Exclude<OptimizerName, 'mkor' | 'mkorlamb'>;
const configs: Record<GradientOnly, () => Optimizer> = {
  sgd: () => OPTIMIZERS.sgd({ learningRate: schedule, weightDecay: 1e-4, excludeFromWeightDecay: exclude }),
  momentum: () => OPTIMIZERS.momentum({ learningRate: 0.01, clipGlobalNorm: 1 }),
  nesterov: () => OPTIMIZERS.nesterov({ learningRate: 0.01 }),
  adam: () => OPTIMIZERS.adam({ learningRate: schedule }),
  adamw: () => OPTIMIZERS.adamw({ excludeFromWeightDecay: exclude }),
  muadam: () => OPTIMIZERS.muadam({ mupScale: { kernel: 0.25, bias: 1 } }),
  lars: () => OPTIMIZERS.lars({ learningRate: schedule, weightDecay: 1e-4, excludeFromWeightDecay: exclude, excludeFromTrustRatio: exclude }),
  lamb: () => OPTIMIZERS.lamb({ weightDecay: 0.01, excludeFromWeightDecay: exclude, clipGlobalNorm: 1 }),
  tvlars: () => OPTIMIZERS.tvlars({ learningRate: 0.1, nesterov: true }),
};

describe('no tensor leaks over 1,000 steps', () => {
  it.each(Object.keys(configs) as GradientOnly[])('%s: step() and update() keep numTensors flat', (name) => {
    const opt = configs[name]();
    let params: Params = { kernel: tf.randomNormal([4, 3], 0, 1, 'float32', 1), bias: tf.zeros([3]) };
    const grads: Params = { kernel: tf.randomNormal([4, 3], 0, 1, 'float32', 2), bias: tf.ones([3]) };
    let state = opt.init(params);
    // warm-up step: lazily created scalars and kernels settle
    ({ params, state } = opt.step(params, grads, state));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) ({ params, state } = opt.step(params, grads, state));
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < 200; i++) {
      const r = opt.update(grads, state, params);
      const next: Params = {};
      for (const [k, p] of Object.entries(params)) next[k] = tf.add(p, r.updates[k]!);
      tf.dispose([Object.values(r.updates), Object.values(params)]);
      disposeReplaced(state.inner, r.state.inner);
      params = next;
      state = r.state;
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(params.kernel!.dataSync()[0]!)).toBe(true);
    tf.dispose([Object.values(params), Object.values(grads)]);
    tf.dispose(state.inner as tf.TensorContainer);
  });
});
