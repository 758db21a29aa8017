import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { lamb } from '../src/optim/baselines/lamb.js';
import { lars } from '../src/optim/baselines/lars.js';
import { adam } from '../src/optim/baselines/adam.js';
import type { Optimizer } from '../src/optim/optimizer.js';
import { warmupCosine } from '../src/optim/schedules.js';
import { TfjsOptimizer, asTfjsOptimizer } from '../src/tfjs/adapter.js';
import type { Params } from '../src/tree/params.js';
import { mismatch } from './helpers/reference.js';
import { useBackend } from './helpers/backend.js';

beforeAll(async () => {
  await useBackend('wasm');
});

function data() {
  const x = tf.randomNormal([32, 5], 0, 1, 'float32', 7);
  const y = tf.tidy(() => tf.sin(tf.matMul(x, tf.randomNormal([5, 2], 0, 1, 'float32', 8))));
  return { x, y };
}

function model(seed: number) {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ units: 8, inputShape: [5], activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed }) }));
  m.add(tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotNormal({ seed: seed + 1 }), biasInitializer: 'ones' }));
  return m;
}

/** The same network and loss, stepped by the functional optimizer API. */
function functionalRun(opt: Optimizer, m: tfl.Sequential, x: tf.Tensor, y: tf.Tensor, steps: number) {
  const names = m.trainableWeights.map((w) => w.originalName);
  let params: Params = {};
  m.trainableWeights.forEach((w, i) => (params[names[i]!] = tf.clone(w.read())));
  let state = opt.init(params);
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const lossFn = (...ws: tf.Tensor[]) => {
      const [k1, b1, k2, b2] = ws as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D];
      const h = tf.tanh(tf.add(tf.matMul(x as tf.Tensor2D, k1), b1));
      return tf.losses.meanSquaredError(y, tf.add(tf.matMul(h, k2), b2)) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(lossFn)(Object.values(params));
    losses.push(value.dataSync()[0]!);
    const g: Params = {};
    names.forEach((n, i) => (g[n] = grads[i]!));
    ({ params, state } = opt.step(params, g, state));
    tf.dispose([value, grads]);
  }
  return {
    params,
    losses,
    dispose: () => {
      tf.dispose(Object.values(params));
      tf.dispose(state.inner as tf.TensorContainer);
    },
  };
}

describe.each([
  ['lamb', () => lamb({ learningRate: 0.05, weightDecay: 0.01, excludeFromWeightDecay: ['bias'] })],
  ['lars', () => lars({ learningRate: 5, weightDecay: 1e-4, excludeFromWeightDecay: ['bias'], nesterov: true })],
] as const)('%s inside model.fit', (_name, make) => {
  it('lowers the loss and matches the functional path step for step', async () => {
    const { x, y } = data();
    const m = model(1);
    m.compile({ optimizer: asTfjsOptimizer(make()), loss: 'meanSquaredError' });
    const ref = functionalRun(make(), m, x, y, 12);
    const h = await m.fit(x, y, { epochs: 12, batchSize: 32, shuffle: false, verbose: 0 });
    const fitLosses = h.history.loss as number[];
    expect(mismatch(fitLosses, ref.losses, 1e-4, 1e-6)).toBeNull();
    expect(fitLosses[11]!).toBeLessThan(fitLosses[0]! * 0.8);
    m.trainableWeights.forEach((w) => {
      expect(mismatch(w.read().dataSync(), Array.from(ref.params[w.originalName]!.dataSync()), 1e-4, 1e-6), w.originalName).toBeNull();
    });
    ref.dispose();
    tf.dispose([x, y]);
    m.dispose();
  });
});

describe('serialization through model.save / loadLayersModel', () => {
  it('round-trips the optimizer config and state: a reloaded model continues exactly', async () => {
    const { x, y } = data();
    const make = () =>
      lamb({ learningRate: warmupCosine({ peak: 0.05, warmupSteps: 3, totalSteps: 20 }), weightDecay: 0.01, excludeFromWeightDecay: ['bias'] });
    const m = model(3);
    m.compile({ optimizer: asTfjsOptimizer(make()), loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 4, batchSize: 32, shuffle: false, verbose: 0 });

    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
      { includeOptimizer: true },
    );
    const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    const opt = reloaded.optimizer as unknown as TfjsOptimizer;
    expect(opt).toBeInstanceOf(TfjsOptimizer);
    expect(opt.iterations).toBe(4);
    expect(opt.getConfig()).toEqual(make().toConfig());

    const a = await m.fit(x, y, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0 });
    const b = await reloaded.fit(x, y, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0 });
    expect(mismatch(b.history.loss as number[], a.history.loss as number[], 1e-6, 1e-7)).toBeNull();
    // A fresh optimizer (no restored state) would differ: the check above can fail.
    const fresh = model(3);
    fresh.setWeights(reloaded.getWeights().map((w) => w.clone()));
    fresh.compile({ optimizer: asTfjsOptimizer(make()), loss: 'meanSquaredError' });
    const c = await fresh.fit(x, y, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0 });
    expect(mismatch(c.history.loss as number[], b.history.loss as number[], 1e-6, 1e-7)).not.toBeNull();
    tf.dispose([x, y]);
    [m, reloaded, fresh].forEach((mm) => mm.dispose());
  });

  it('accepts both gradient forms and refuses a state of the wrong size', async () => {
    const v = tf.variable(tf.ones([3]), true, 'adapter_test/w');
    const o = asTfjsOptimizer(adam({ learningRate: 0.1 }));
    o.applyGradients({ 'adapter_test/w': tf.ones([3]) });
    o.applyGradients([{ name: 'adapter_test/w', tensor: tf.ones([3]) }]);
    expect(o.iterations).toBe(2);
    expect(v.dataSync()[0]).toBeCloseTo(0.8, 5);
    const w = await o.getWeights();
    expect(w.map((n) => n.name)).toEqual(['iter', 'lopt/3/count', 'lopt/3/mu/adapter_test/w', 'lopt/3/nu/adapter_test/w']);
    await expect(o.setWeights(w.slice(0, 3))).rejects.toThrow(
      /setWeights got 2 state tensors after the iteration counter, but this optimizer's state for these variables has 3/,
    );
    // State is keyed by position: a renamed variable (as after a reload) continues with the same moments.
    const renamed = tf.variable(tf.ones([3]), true, 'adapter_test/w_1');
    o.applyGradients({ 'adapter_test/w_1': tf.fill([3], -1) });
    expect(o.iterations).toBe(3);
    // Third Adam step (g = 1, 1, −1): m̂ and v̂ carry the first two steps; a fresh state would step +0.1.
    const m3 = 0.1 * 0.9 * 0.9 + 0.1 * 0.9 - 0.1;
    const v3 = 0.001 * 0.999 * 0.999 + 0.001 * 0.999 + 0.001;
    const step = (-0.1 * m3) / (1 - 0.9 ** 3) / (Math.sqrt(v3 / (1 - 0.999 ** 3)) + 1e-8);
    expect(renamed.dataSync()[0]).toBeCloseTo(1 + step, 5);
    expect(() => o.applyGradients({ 'adapter_test/w': tf.ones([3]), 'adapter_test/w_1': tf.ones([3]) })).toThrow(
      /got gradients for 2 variables, but its state was built for 1 \(adapter_test\/w\)/,
    );
    expect(() => o.applyGradients({ 'adapter_test/nope': tf.ones([3]) })).toThrow(/no variable named 'adapter_test\/nope' is registered/);
    o.dispose();
    v.dispose();
    renamed.dispose();
  });

  it('keeps numTensors flat over many fit steps', async () => {
    const { x, y } = data();
    const m = model(5);
    m.compile({ optimizer: asTfjsOptimizer(lars({ learningRate: 0.5 })), loss: 'meanSquaredError' });
    await m.fit(x, y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const before = tf.memory().numTensors;
    await m.fit(x, y, { epochs: 25, batchSize: 8, shuffle: false, verbose: 0 });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
    m.dispose();
  });
});
