// μP for tfjs-layers: mupMlp computes what the μP MLP task computes, mupScaleFor gives the task's
// per-tensor update scales, and the model saves and loads with its MupReadout.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { mupMlp, mupScaleFor, MupReadout } from '../src/tfjs/mup.js';
import { mlpForward, mlpTask, parseMlpName } from '../tasks/mlp.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const NAME = 'mlp-mnist8-w32-d2-relu-b16-mup';

describe('μP tfjs-layers models', () => {
  it("mupMlp's forward pass equals the μP MLP task's on the same weights (readout multiplier included)", () => {
    const c = parseMlpName(NAME);
    const task = mlpTask(c);
    const model = mupMlp({ inputs: 64, hidden: [32, 32], outputs: 10, outputActivation: 'linear', seed: 3 });
    const params = task.init([5]); // [1, ...] per tensor
    // A non-zero readout, so the 1/fan_in multiplier is exercised.
    params['readout/kernel']!.dispose();
    params['readout/bias']!.dispose();
    params['readout/kernel'] = tf.randomNormal([1, 32, 10], 0, 1, 'float32', 11);
    params['readout/bias'] = tf.randomNormal([1, 10], 0, 1, 'float32', 12);
    const order = ['layer0/kernel', 'layer0/bias', 'layer1/kernel', 'layer1/bias', 'readout/kernel', 'readout/bias'];
    const shapes = model.getWeights().map((w) => w.shape);
    // Fresh tensors, not reshapes: wasm's fused matMul reads a bias's rank from its data record,
    // which a reshape shares with the [1, n] original.
    model.setWeights(order.map((n, i) => tf.tensor(params[n]!.dataSync(), shapes[i]!)));
    const batch = task.batches('train', [1]).next();
    const x = batch['x']!; // [1, 16, 64]
    const mine = model.predict(tf.squeeze(x, [0])) as tf.Tensor;
    const reference = tf.squeeze(mlpForward(c, params, x), [0]);
    const a = mine.dataSync();
    const b = reference.dataSync();
    expect(a.length).toBe(16 * 10);
    let maxRel = 0;
    for (let i = 0; i < a.length; i++) maxRel = Math.max(maxRel, Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + 1e-3));
    expect(maxRel).toBeLessThan(1e-5);
    tf.dispose([mine, reference, ...Object.values(params), ...Object.values(batch)]);
    model.dispose();
  });

  it("mupScaleFor gives the task's per-tensor μP scales: 1/fan_in for hidden-to-hidden kernels, 1 elsewhere", () => {
    const task = mlpTask(parseMlpName(NAME));
    const model = mupMlp({ inputs: 64, hidden: [32, 32], outputs: 10 });
    const scales = mupScaleFor(model) as Record<string, number>;
    const names = model.trainableWeights.map((w) => w.name);
    const expected = ['layer0/kernel', 'layer0/bias', 'layer1/kernel', 'layer1/bias', 'readout/kernel', 'readout/bias'].map((n) => task.mupScale[n]);
    expect(names.map((n) => scales[n])).toEqual(expected);
    expect(expected).toEqual([1, 1, 1 / 32, 1, 1, 1]);
    model.dispose();
  });

  it('initializes as μP: hidden weights ~ N(0, 1/fan_in) truncated, hidden biases ~ N(0, 1), a zero readout', () => {
    const model = mupMlp({ inputs: 256, hidden: [512], outputs: 10, seed: 1 });
    const [kernel, bias, readoutKernel, readoutBias] = model.getWeights();
    const std = (t: tf.Tensor) => Math.sqrt(tf.moments(t).variance.dataSync()[0]!);
    // A normal truncated at ±2σ without rescaling has std 0.880σ.
    expect(std(kernel!) * Math.sqrt(256)).toBeGreaterThan(0.86);
    expect(std(kernel!) * Math.sqrt(256)).toBeLessThan(0.9);
    expect(tf.max(tf.abs(kernel!)).dataSync()[0]!).toBeLessThanOrEqual(2 / Math.sqrt(256) + 1e-6);
    expect(std(bias!)).toBeGreaterThan(0.85);
    expect(std(bias!)).toBeLessThan(1.15);
    expect(tf.max(tf.abs(readoutKernel!)).dataSync()[0]).toBe(0);
    expect(tf.max(tf.abs(readoutBias!)).dataSync()[0]).toBe(0);
    // The same seed gives the same model.
    const again = mupMlp({ inputs: 256, hidden: [512], outputs: 10, seed: 1 });
    expect(Array.from(again.getWeights()[0]!.dataSync())).toEqual(Array.from(kernel!.dataSync()));
    model.dispose();
    again.dispose();
  });

  it('saves and loads with its MupReadout', async () => {
    const model = mupMlp({ inputs: 8, hidden: [4], outputs: 3, seed: 2 });
    model.setWeights(model.getWeights().map((w, i) => tf.add(w, tf.fill(w.shape, 0.1 * (i + 1)))));
    const artifacts: tf.io.ModelArtifacts[] = [];
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts.push(a);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts[0]!));
    expect(loaded.layers.at(-1)).toBeInstanceOf(MupReadout);
    const x = tf.randomNormal([2, 8], 0, 1, 'float32', 4);
    expect(Array.from((loaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
    model.dispose();
    loaded.dispose();
  });

  it('refuses bad options and unsupported layers with a clear error', () => {
    expect(() => mupMlp({ inputs: 0, hidden: [4], outputs: 3 })).toThrow(/mupMlp: inputs must be a positive integer; got 0/);
    expect(() => mupMlp({ inputs: 4, hidden: [], outputs: 3 })).toThrow(/hidden must be a non-empty list/);
    expect(() => mupMlp({ inputs: 4, hidden: [4], outputs: 3, activation: 'gelu' as 'relu' })).toThrow(/activation must be 'relu' or 'tanh'; got 'gelu'/);
    const conv = tfl.sequential({ layers: [tfl.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 2 })] });
    expect(() => mupScaleFor(conv)).toThrow(/layer '.*' is a Conv2D; only Dense layers and a MupReadout are supported/);
    conv.dispose();
  });
});
