import * as tf from '@tensorflow/tfjs-core';
import { asTfjsOptimizer } from '../src/tfjs/adapter.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPTIMIZERS, READS_LAYER_STATISTICS, createOptimizer, type OptimizerName } from '../src/optim/registry.js';
import { adam, muadam } from '../src/optim/baselines/adam.js';
import { lamb } from '../src/optim/baselines/lamb.js';
import { lars } from '../src/optim/baselines/lars.js';
import { nesterov, sgd } from '../src/optim/baselines/sgd.js';
import { scheduleFromConfig } from '../src/optim/schedules.js';
import { useBackend } from './helpers/backend.js';
import { createLearnedOptimizer, LEARNED_OPTIMIZERS } from '../src/lopt/registry.js';
import { stateTensors } from '../src/tree/stateTree.js';

beforeAll(async () => {
  await useBackend('cpu');
});

describe('bad options are refused before any work, naming optimizer, option and what is allowed', () => {
  it('unknown option names', () => {
    expect(() => lamb({ learningrate: 0.1 } as never)).toThrow(
      "lamb: unknown option 'learningrate'; allowed options: learningRate, beta1, beta2, epsilon, weightDecay",
    );
    expect(() => createOptimizer('adam', { lr: 1 })).toThrow(/adam: unknown option 'lr'/);
  });
  it('negative, non-finite or missing learning rates', () => {
    expect(() => sgd({ learningRate: -0.1 })).toThrow(
      "sgd: option 'learningRate' must be a finite number >= 0 or a schedule (a function of the step count); got -0.1",
    );
    expect(() => adam({ learningRate: Number.NaN })).toThrow(/adam: option 'learningRate' must be a finite number >= 0.*got NaN/);
    expect(() => lars({ learningRate: Infinity })).toThrow(/lars: option 'learningRate'.*got Infinity/);
    expect(() => lars({} as never)).toThrow("lars: option 'learningRate' is required; it must be a finite number >= 0");
  });
  it('other option values', () => {
    expect(() => adam({ beta1: 1 })).toThrow("adam: option 'beta1' must be a finite number in [0, 1); got 1");
    expect(() => lamb({ weightDecay: -1 })).toThrow("lamb: option 'weightDecay' must be a finite number >= 0; got -1");
    expect(() => lamb({ excludeFromWeightDecay: 'bias' as never })).toThrow(
      /lamb: option 'excludeFromWeightDecay' must be an array of regular-expression strings/,
    );
    expect(() => lamb({ excludeFromWeightDecay: ['(bias'] })).toThrow(/must hold valid regular expressions; got \["\(bias"\]/);
    expect(() => nesterov({ learningRate: 0.1, momentum: 0 })).toThrow(/nesterov: option 'nesterov' needs option 'momentum' > 0/);
    expect(() => sgd({ learningRate: 0.1, clipGlobalNorm: 0 })).toThrow("sgd: option 'clipGlobalNorm' must be a finite number > 0; got 0");
    expect(() => muadam({ mupScale: { w: -1 } })).toThrow(/muadam: option 'mupScale' must map every parameter name/);
    expect(() => lamb('fast' as never)).toThrow('lamb: options must be an object; got "fast"');
  });
  it('unknown optimizer names and schedule configs', () => {
    expect(() => createOptimizer('adamax')).toThrow(`unknown optimizer 'adamax'; allowed: ${Object.keys(OPTIMIZERS).join(', ')}`);
    expect(() => createOptimizer('adam', { learningRate: { type: 'cosine' } })).toThrow(/adam: option 'learningRate': schedule: unknown type "cosine"/);
    expect(() => scheduleFromConfig({ type: 'constant', value: 1, extra: 2 })).toThrow("schedule constant: unknown field 'extra'; allowed: value");
  });
});

describe('mismatched gradients and parameters', () => {
  const params = () => ({ w: tf.zeros([2, 3]), b: tf.zeros([3]) });
  it('missing, unknown and misshapen gradients name the parameter and the expected value', () => {
    const opt = lamb();
    const p = params();
    const s = opt.init(p);
    expect(() => opt.update({ w: tf.zeros([2, 3]) }, s, p)).toThrow("lamb: no gradient given for 'b' (expected names: w, b)");
    expect(() => opt.update({ w: tf.zeros([2, 3]), b: tf.zeros([3]), c: tf.zeros([1]) }, s, p)).toThrow(
      "lamb: gradient given for unknown parameter 'c' (expected names: w, b)",
    );
    expect(() => opt.update({ w: tf.zeros([3, 2]), b: tf.zeros([3]) }, s, p)).toThrow("lamb: gradient 'w' has shape [3,2], expected [2,3]");
    expect(() => opt.step({ w: tf.zeros([2, 3]), x: tf.zeros([3]) }, { w: tf.zeros([2, 3]), b: tf.zeros([3]) }, s)).toThrow(
      "lamb: no parameter given for 'b' (expected names: w, b)",
    );
    expect(() => opt.update({ w: tf.zeros([2, 3]), b: [1, 2, 3] as never }, s, p)).toThrow("lamb: gradient 'b' is not a tensor");
  });
  it('μAdam without a scale for some parameter fails at init, naming it', () => {
    expect(() => muadam({ mupScale: { w: 0.5 } }).init(params())).toThrow(/no valid μP scale for parameter 'b'/);
  });
});

describe('hyperparameters cannot be changed silently', () => {
  it('options are frozen and the tfjs setters throw with what to do instead', () => {
    const o = lars({ learningRate: 0.1 });
    expect(() => {
      (o.options as { learningRate: number }).learningRate = 1;
    }).toThrow(/read only|read-only|not extensible|Cannot assign/);
    expect(o.options.learningRate).toBe(0.1);
    const t = asTfjsOptimizer(o);
    expect(() => t.setLearningRate(1)).toThrow(/lars \(tfjs optimizer\): hyperparameters are fixed at construction; pass a schedule/);
    expect(() => t.setMomentum(0.5)).toThrow(/build a new optimizer with lars\(\{ momentum \}\)/);
  });
});

describe('serialization', () => {
  it('toConfig round-trips through createOptimizer, schedules included', () => {
    const o = lamb({
      learningRate: scheduleFromConfig({ type: 'warmupCosine', peak: 1e-3, warmupSteps: 10, totalSteps: 100 }),
      weightDecay: 0.01,
      excludeFromWeightDecay: ['bias'],
    });
    const c = o.toConfig();
    expect(c.optimizer).toBe('lamb');
    expect(c.options.learningRate).toEqual({ type: 'warmupCosine', peak: 1e-3, warmupSteps: 10, totalSteps: 100, init: 0, end: 0 });
    const back = createOptimizer(c.optimizer, JSON.parse(JSON.stringify(c.options)));
    expect(back.toConfig()).toEqual(c);
  });
  it('a custom function cannot be serialized, and says so', () => {
    const o = adam({ learningRate: (t) => 1 / (t + 1) });
    expect(() => o.toConfig()).toThrow(/adam: option 'learningRate' is a custom function and cannot be serialized/);
  });
});

describe('zero-size and non-float32 tensors: one clear error from every optimizer', () => {
  const learned = Object.keys(LEARNED_OPTIMIZERS).map((arch) => {
    const lo = createLearnedOptimizer(arch, arch === 'velo' ? { lstmHiddenSize: 8, paramInits: 4 } : {});
    // VeLO needs the horizon (and, below, the loss); the others ignore both.
    return { name: arch, make: () => lo.optimizer(lo.initTheta(0), { totalSteps: 10 }) };
  });
  const all = [
    ...Object.keys(OPTIMIZERS).map((name) => ({
      name,
      make: () =>
        createOptimizer(name, {
          learningRate: 0.1,
          ...(name === 'muadam' ? { mupScale: () => 1 } : {}),
          ...(READS_LAYER_STATISTICS.has(name as OptimizerName) ? { layers: [{ kernel: 'w', bias: null, kind: 'dense' }] } : {}),
        }),
    })),
    ...learned,
  ];

  it('every optimizer refuses them at init, update and step, naming the parameter', () => {
    for (const { name, make } of all) {
      const opt = make();
      const w = tf.ones([3, 2]);
      const ints = tf.tensor([1, 2, 3], [3], 'int32');
      const empty = tf.zeros([0, 3]);
      expect(() => opt.init({ w, n: ints }), name).toThrow(
        `${opt.name}: parameter 'n' is int32; lopt optimizers update float32 tensors (cast it: tf.cast(t, 'float32'))`,
      );
      expect(() => opt.init({ w, e: empty }), name).toThrow(
        `${opt.name}: parameter 'e' has shape [0,3], no elements; leave it out of the parameters (there is nothing to update)`,
      );
      const g = tf.tensor([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
      const before = tf.memory().numTensors;
      const state = opt.init({ w });
      expect(() => opt.update({ w: g }, state, { w }), name).toThrow(
        `${opt.name}: gradient 'w' is int32; lopt optimizers update float32 tensors (cast it: tf.cast(t, 'float32'))`,
      );
      expect(() => opt.step({ w }, { w: g }, state), name).toThrow(`${opt.name}: gradient 'w' is int32`);
      // The refused calls changed and leaked nothing: a normal step still works.
      const grad = tf.onesLike(w);
      // MKOR reads the layer's rows at its first step: two rows of w's input and output gradient.
      const statistics = { w: { inputs: tf.ones([2, 3]), outputGrads: tf.ones([2, 2]) } };
      const next = opt.step({ w: tf.clone(w) }, { w: grad }, state, { loss: 1, ...(opt.wantsLayerStatistics(state) ? { layerStatistics: statistics } : {}) });
      tf.dispose([statistics.w.inputs, statistics.w.outputGrads]);
      expect(next.params['w']!.dtype, name).toBe('float32');
      tf.dispose([grad, next.params['w']!, ...stateTensors(next.state.inner)]);
      expect(tf.memory().numTensors, name).toBe(before);
      tf.dispose([w, ints, empty, g]);
    }
  });
});
