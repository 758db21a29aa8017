// The one state codec (src/tree/stateCodec.ts): every optimizer's state survives plain data
// bit for bit, and a plain form that does not fit the layout is refused naming the leaf.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createOptimizer, OPTIMIZERS, READS_LAYER_STATISTICS, type OptimizerName } from '../src/optim/registry.js';
import { createLearnedOptimizer } from '../src/lopt/registry.js';
import { decodeState, decodeStateFrom, encodeState } from '../src/tree/stateCodec.js';
import { disposeState, stateLeaves } from '../src/tree/stateTree.js';
import type { Params } from '../src/tree/params.js';
import { useBackend } from './helpers/backend.js';

beforeAll(async () => {
  await useBackend('cpu');
});

const bits = (leaves: ReturnType<typeof encodeState>) =>
  leaves.map((l) => (typeof l === 'number' ? l : Array.from(new Uint32Array(l.buffer, l.byteOffset, l.length))));

const LAYERS = [{ kernel: 'w', bias: 'b', kind: 'dense' }];

describe('state codec', () => {
  const optimizers = () => [
    ...Object.keys(OPTIMIZERS).map((name) =>
      createOptimizer(name, {
        learningRate: 0.1,
        ...(name === 'muadam' ? { mupScale: () => 0.5 } : {}),
        ...(READS_LAYER_STATISTICS.has(name as OptimizerName) ? { layers: LAYERS, updateEvery: 2 } : {}),
      }),
    ),
    // MKOR-H's switch state too.
    createOptimizer('mkor', { learningRate: 0.1, layers: LAYERS, updateEvery: 2, hybrid: { window: 1 } }),
    (() => {
      const lo = createLearnedOptimizer('small_fc_lopt', {});
      return lo.optimizer(lo.initTheta(3));
    })(),
  ];

  it('every optimizer state round-trips through plain data bit for bit, after steps', () => {
    for (const opt of optimizers()) {
      const before = tf.memory().numTensors;
      let params: Params = { w: tf.randomNormal([4, 3], 0, 1, 'float32', 1), b: tf.randomNormal([3], 0, 1, 'float32', 2) };
      let state = opt.init(params);
      for (let s = 0; s < 3; s++) {
        const grads = { w: tf.randomNormal([4, 3], 0, 1, 'float32', 10 + s), b: tf.randomNormal([3], 0, 1, 'float32', 20 + s) };
        const statistics = { w: { inputs: tf.randomNormal([5, 4], 0, 1, 'float32', 30 + s), outputGrads: tf.randomNormal([5, 3], 0, 1, 'float32', 40 + s) } };
        ({ params, state } = opt.step(params, grads, state, { loss: 2 - s, ...(opt.wantsLayerStatistics(state) ? { layerStatistics: statistics } : {}) }));
        tf.dispose([...Object.values(grads), statistics.w.inputs, statistics.w.outputGrads]);
      }
      const plain = encodeState(state.inner);
      const decoded = decodeStateFrom(() => opt.init(params).inner, plain, opt.name);
      expect(bits(encodeState(decoded)), opt.name).toEqual(bits(plain));
      expect(stateLeaves(decoded).length, opt.name).toBe(stateLeaves(state.inner).length);
      disposeState(decoded);
      disposeState(state.inner);
      tf.dispose(Object.values(params));
      expect(tf.memory().numTensors, opt.name).toBe(before);
    }
  });

  it('refuses a plain form that does not fit the layout, naming the leaf, and makes no tensor', () => {
    const opt = createOptimizer('adam', { learningRate: 0.1 });
    const params = { w: tf.zeros([2, 3]) };
    const template = opt.init(params).inner;
    const plain = encodeState(template);
    const before = tf.memory().numTensors;
    expect(() => decodeState(template, plain.slice(1), 'adam')).toThrow("adam: the state holds 2 leaves, this optimizer's layout has 3");
    const wrongSize = plain.map((l) => (typeof l === 'number' ? l : new Float32Array(5)));
    expect(() => decodeState(template, wrongSize, 'adam')).toThrow("adam: state leaf 2 ('3/mu/w') holds 5 values, expected 6 values [2,3]");
    const numberForArray = plain.map((l) => (typeof l === 'number' ? l : 1));
    expect(() => decodeState(template, numberForArray, 'adam')).toThrow("adam: state leaf 2 ('3/mu/w') holds a number, expected 6 values [2,3]");
    expect(() => decodeState(template, [new Float32Array(1), ...plain.slice(1)], 'adam')).toThrow("adam: state leaf 1 ('3/count') must be a number");
    const wrongShape = [plain[0]!, tf.zeros([3, 2]), plain[2]!];
    expect(() => decodeState(template, wrongShape, 'adam')).toThrow("adam: state leaf 2 ('3/mu/w') has shape [3,2], expected [2,3]");
    tf.dispose(wrongShape[1] as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before);
    disposeState(template);
    tf.dispose(Object.values(params));
  });
});
