import * as tf from '@tensorflow/tfjs-core';
import { OPTIMIZERS, type OptimizerName } from '../optim/registry.js';
import type { Optimizer } from '../optim/optimizer.js';
import { warmupCosine } from '../optim/schedules.js';
import { lossGradsAndLayerStatistics, NO_TAP, type LayerTap } from '../optim/layerTap.js';
import type { LayerStatistics } from '../optim/layerStatistics.js';
import { disposeParams, type Params } from '../tree/params.js';

export interface DemoResult {
  optimizer: string;
  initialLoss: number;
  finalLoss: number;
  msPerStep: number;
}

/** A seeded synthetic classification problem: 10 classes from a random teacher network. */
function problem(seed: number, n: number, dim: number, classes: number) {
  return tf.tidy(() => {
    const x = tf.randomNormal([n, dim], 0, 1, 'float32', seed);
    const teacher = tf.randomNormal([dim, classes], 0, 1, 'float32', seed + 1);
    const y = tf.cast(tf.oneHot(tf.argMax(tf.matMul(x, teacher), 1), classes), 'float32');
    return { x, y };
  });
}

function initMlp(seed: number, sizes: number[]): Params {
  const p: Params = {};
  for (let i = 0; i + 1 < sizes.length; i++) {
    p[`dense${i}/kernel`] = tf.truncatedNormal([sizes[i]!, sizes[i + 1]!], 0, 1 / Math.sqrt(sizes[i]!), 'float32', seed + i);
    p[`dense${i}/bias`] = tf.zeros([sizes[i + 1]!]);
  }
  return p;
}

function loss(params: Params, x: tf.Tensor, y: tf.Tensor, layers: number, tap: LayerTap = NO_TAP): tf.Scalar {
  let h = x as tf.Tensor2D;
  for (let i = 0; i < layers; i++) {
    h = tap.dense(`dense${i}/kernel`, h, tf.add(tf.matMul(h, params[`dense${i}/kernel`] as tf.Tensor2D), params[`dense${i}/bias`]!)) as tf.Tensor2D;
    if (i + 1 < layers) h = tf.relu(h);
  }
  return tf.losses.softmaxCrossEntropy(y, h) as tf.Scalar;
}

/** Each optimizer (one sensible setting, warmup + cosine) trains the same MLP from the same init. */
export function demoOptimizers(opts: { steps: number; seed: number; optimizers?: OptimizerName[] }): DemoResult[] {
  const sizes = [32, 64, 64, 10];
  const layers = sizes.length - 1;
  const denseLayers = Array.from({ length: layers }, (_, i) => ({ kernel: `dense${i}/kernel`, bias: `dense${i}/bias`, kind: 'dense' as const }));
  const sched = (peak: number) => warmupCosine({ peak, warmupSteps: Math.ceil(opts.steps / 10), totalSteps: opts.steps });
  const configs: Record<OptimizerName, () => Optimizer> = {
    sgd: () => OPTIMIZERS.sgd({ learningRate: sched(0.3) }),
    momentum: () => OPTIMIZERS.momentum({ learningRate: sched(0.05) }),
    nesterov: () => OPTIMIZERS.nesterov({ learningRate: sched(0.05) }),
    adam: () => OPTIMIZERS.adam({ learningRate: sched(3e-3) }),
    adamw: () => OPTIMIZERS.adamw({ learningRate: sched(3e-3), weightDecay: 0.01 }),
    muadam: () => OPTIMIZERS.muadam({ learningRate: sched(3e-3), mupScale: (n, s) => (n.startsWith('dense1/') && s.length === 2 ? 64 / s[0]! : 1) }),
    lars: () => OPTIMIZERS.lars({ learningRate: sched(5), weightDecay: 1e-4, excludeFromWeightDecay: ['bias'], excludeFromTrustRatio: ['bias'] }),
    lamb: () => OPTIMIZERS.lamb({ learningRate: sched(0.01), weightDecay: 0.01, excludeFromWeightDecay: ['bias'] }),
    tvlars: () => OPTIMIZERS.tvlars({ learningRate: sched(5), weightDecay: 1e-4, excludeFromWeightDecay: ['bias'], excludeFromTrustRatio: ['bias'] }),
    mkor: () => OPTIMIZERS.mkor({ learningRate: sched(0.05), layers: denseLayers }),
    mkorlamb: () => OPTIMIZERS.mkorlamb({ learningRate: sched(0.01), layers: denseLayers, weightDecay: 0.01, excludeFromWeightDecay: ['bias'] }),
  };
  const names = opts.optimizers ?? (Object.keys(configs) as OptimizerName[]);
  const { x, y } = problem(opts.seed, 512, sizes[0]!, sizes[layers]!);
  const results: DemoResult[] = [];
  for (const name of names) {
    const opt = configs[name]();
    let params = initMlp(opts.seed + 10, sizes);
    let state = opt.init(params);
    const grad = tf.valueAndGrads((...ws: tf.Tensor[]) => {
      const p: Params = {};
      Object.keys(params).forEach((k, i) => (p[k] = ws[i]!));
      return loss(p, x, y, layers);
    });
    let first = Number.NaN;
    let last = Number.NaN;
    const t0 = performance.now();
    for (let k = 0; k < opts.steps; k++) {
      let value: tf.Tensor;
      let g: Params;
      let statistics: Record<string, LayerStatistics> | undefined;
      if (opt.wantsLayerStatistics(state)) {
        // MKOR on its refresh steps: the loss, gradients and each dense layer's inputs and output gradients in one pass.
        ({ losses: value, grads: g, statistics } = lossGradsAndLayerStatistics((p, tap) => loss(p, x, y, layers, tap), params, false));
      } else {
        const r = grad(Object.values(params));
        value = r.value;
        g = Object.fromEntries(Object.keys(params).map((key, i) => [key, r.grads[i]!]));
      }
      ({ params, state } = opt.step(params, g, state, { loss: value, ...(statistics ? { layerStatistics: statistics } : {}) }));
      if (k === 0) first = value.dataSync()[0]!;
      if (k === opts.steps - 1) last = value.dataSync()[0]!;
      tf.dispose([value, Object.values(g), Object.values(statistics ?? {}).flatMap((s) => [s.inputs, s.outputGrads])]);
    }
    const msPerStep = (performance.now() - t0) / opts.steps;
    results.push({ optimizer: name, initialLoss: first, finalLoss: last, msPerStep });
    disposeParams(params);
    tf.dispose(state.inner as tf.TensorContainer);
  }
  tf.dispose([x, y]);
  return results;
}
