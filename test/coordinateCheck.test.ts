/**
 * The μP "coordinate check" (Tensor Programs V): after a few optimizer steps, per-layer activation
 * RMS is flat across widths under μP (μAdam with the task's mupScale) and grows with width under SP
 * (plain Adam).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { adam, muadam } from '../src/optim/baselines/adam.js';
import type { Params } from '../src/tree/params.js';
import { mlpForward, mlpTask, type MlpConfig } from '../tasks/mlp.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const WIDTHS = [64, 128, 256, 512, 1024, 2048];
const STEPS = 5;
const LR = 0.01;

/** RMS of each hidden layer's activations and of the logits after STEPS steps. */
function rmsAfterTraining(parametrization: 'mup' | 'sp', width: number): number[] {
  const c: MlpConfig = { dataset: 'mnist', imageSize: 8, width, depth: 2, activation: 'relu', batchSize: 64, parametrization };
  const task = mlpTask(c);
  const opt = parametrization === 'mup' ? muadam({ learningRate: LR, mupScale: { ...task.mupScale } }) : adam({ learningRate: LR });
  let params = task.init([1]);
  let state = opt.init(params);
  const stream = task.batches('train', [1]);
  const names = Object.keys(params);
  for (let k = 0; k < STEPS; k++) {
    const batch = stream.next();
    const grads = tf.grads((...ws: tf.Tensor[]) => {
      const p: Params = {};
      names.forEach((n, i) => (p[n] = ws[i]!));
      return tf.sum(task.loss(p, batch)) as tf.Scalar;
    })(names.map((n) => params[n]!));
    const g: Params = {};
    names.forEach((n, i) => (g[n] = grads[i]!));
    ({ params, state } = opt.step(params, g, state));
    tf.dispose([grads, Object.values(batch)]);
  }
  const batch = task.batches('inner-valid', [2]).next();
  const rms = tf.tidy(() => {
    const acts: tf.Tensor[] = [];
    const logits = mlpForward(c, params, batch['x']!, acts);
    return [...acts, logits].map((a) => tf.sqrt(tf.mean(tf.square(a))));
  });
  const values = rms.map((t) => t.dataSync()[0]!);
  tf.dispose([rms, Object.values(batch), Object.values(params)]);
  tf.dispose(state.inner as tf.TensorContainer);
  return values;
}

describe('μP coordinate check on mlp-mnist8, depth 2, widths 64…2048', () => {
  it('μP keeps every layer’s activation RMS within a factor 2 across widths; SP lets it grow', () => {
    const mup = WIDTHS.map((w) => rmsAfterTraining('mup', w));
    const sp = WIDTHS.map((w) => rmsAfterTraining('sp', w));
    const layers = mup[0]!.length;
    const spread = (rows: number[][], layer: number) => {
      const col = rows.map((r) => r[layer]!);
      return Math.max(...col) / Math.min(...col);
    };
    const table = WIDTHS.map((w, i) => `w${w}: μP ${mup[i]!.map((x) => x.toFixed(3)).join(' ')} | SP ${sp[i]!.map((x) => x.toFixed(3)).join(' ')}`);
    console.info(`activation RMS (layer 0, layer 1, logits) after ${STEPS} steps:\n${table.join('\n')}`);
    for (let l = 0; l < layers; l++) {
      expect(spread(mup, l), `μP layer ${l}\n${table.join('\n')}`).toBeLessThan(2);
    }
    // SP: the logits blow up with width (×17 measured from 64 to 2048), the hidden-to-hidden layer grows too (×2.2).
    const growth = (l: number) => sp[WIDTHS.length - 1]![l]! / sp[0]![l]!;
    expect(growth(2), `SP logits\n${table.join('\n')}`).toBeGreaterThan(4);
    expect(growth(1), `SP layer 1\n${table.join('\n')}`).toBeGreaterThan(1.5);
  });

  it('μP zero-initialises the readout and scales logits by 1/fan_in; SP does neither', () => {
    const cfg = (p: 'mup' | 'sp', depth = 1): MlpConfig => ({
      dataset: 'mnist',
      imageSize: 8,
      width: 32,
      depth,
      activation: 'relu',
      batchSize: 8,
      parametrization: p,
    });
    const mupTask = mlpTask(cfg('mup'));
    const params = mupTask.init([3]);
    expect(tf.max(tf.abs(params['readout/kernel']!)).dataSync()[0]).toBe(0);
    expect(tf.max(tf.abs(params['readout/bias']!)).dataSync()[0]).toBe(0);
    // A readout of ones: μP logits = (Σ h + 1)/32, SP logits = Σ h + 1.
    const ones = { ...params, 'readout/kernel': tf.onesLike(params['readout/kernel']!), 'readout/bias': tf.onesLike(params['readout/bias']!) };
    const x = tf.randomUniform([1, 2, 64], 0, 1, 'float32', 4);
    const h: tf.Tensor[] = [];
    const logitsMup = mlpForward(cfg('mup'), ones, x, h);
    const logitsSp = mlpForward(cfg('sp'), ones, x);
    const hsum = tf.sum(h[0]!, -1).dataSync();
    expect(logitsMup.dataSync()[0]).toBeCloseTo((hsum[0]! + 1) / 32, 4);
    expect(logitsSp.dataSync()[0]).toBeCloseTo(hsum[0]! + 1, 3);
    expect(mupTask.mupScale).toEqual({ 'layer0/kernel': 1, 'layer0/bias': 1, 'readout/kernel': 1, 'readout/bias': 1 });
    const deep = mlpTask(cfg('mup', 3));
    expect(deep.mupScale['layer1/kernel']).toBeCloseTo(1 / 32, 12);
    expect(deep.mupScale['layer2/kernel']).toBeCloseTo(1 / 32, 12);
    const sp = mlpTask(cfg('sp'));
    expect(sp.mupScale['layer0/kernel']).toBe(1);
    const spParams = sp.init([3]);
    expect(tf.max(tf.abs(spParams['readout/kernel']!)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([Object.values(params), Object.values(spParams), ones['readout/kernel'], ones['readout/bias'], x, h, logitsMup, logitsSp]);
  });
});
