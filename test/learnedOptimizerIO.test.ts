import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { saveCheckpoint } from '../src/checkpoint/index.js';
import { loadLearnedOptimizer, saveLearnedOptimizer, shippedCheckpointDir } from '../src/lopt/io.js';
import { createLearnedOptimizer } from '../src/lopt/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'lopt-io-'));

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

describe('loadLearnedOptimizer / saveLearnedOptimizer', () => {
  it('round-trips a μLO bit-exactly and steps identically', async () => {
    const lo = createLearnedOptimizer('small_fc_lopt', { hiddenSize: 32, mup: true });
    const theta = lo.initTheta(11);
    const path = join(dir, 'mulo.lopt');
    await saveLearnedOptimizer(path, lo, theta, { provenance: { recipe: 'test' } });
    const loaded = await loadLearnedOptimizer(path);
    expect(loaded.learnedOptimizer.arch).toBe('small_fc_lopt');
    expect(loaded.learnedOptimizer.config).toEqual(lo.config);
    expect(loaded.checkpoint.provenance.recipe).toBe('test');
    expect(Object.keys(loaded.theta)).toEqual(Object.keys(theta));
    for (const [name, t] of Object.entries(theta)) expect(bits(loaded.theta[name]!), name).toEqual(bits(t));

    const params = { w: tf.randomNormal([1, 4, 3], 0, 1, 'float32', 1), b: tf.zeros([1, 3]) };
    const grads = { w: tf.randomNormal([1, 4, 3], 0, 1, 'float32', 2), b: tf.randomNormal([1, 3], 0, 1, 'float32', 3) };
    const a = lo.optimizer(theta);
    const b = loaded.optimizer();
    const ua = a.update(grads, a.init(params), params).updates;
    const ub = b.update(grads, b.init(params), params).updates;
    for (const name of Object.keys(ua)) expect(bits(ub[name]!), name).toEqual(bits(ua[name]!));
    loaded.dispose();
    tf.dispose([Object.values(theta), Object.values(params), Object.values(grads), Object.values(ua), Object.values(ub)]);
  });

  it('a loaded μLO trains a tfjs model with fit, without tensor growth', async () => {
    const lo = createLearnedOptimizer('small_fc_lopt', {});
    const theta = lo.initTheta(5);
    const path = join(dir, 'fit.lopt');
    await saveLearnedOptimizer(path, lo, theta);
    tf.dispose(Object.values(theta));
    const loaded = await loadLearnedOptimizer(path);
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 8, inputShape: [4], activation: 'relu' }), tfl.layers.dense({ units: 1 })] });
    model.compile({ optimizer: loaded.asTfjsOptimizer({ totalSteps: 50 }), loss: 'meanSquaredError' });
    const x = tf.randomNormal([32, 4], 0, 1, 'float32', 7);
    const y = tf.sum(x, 1, true);
    await model.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0 });
    const before = tf.memory().numTensors;
    const h = await model.fit(x, y, { epochs: 5, batchSize: 8, verbose: 0 });
    expect(tf.memory().numTensors).toBe(before);
    for (const l of h.history.loss as number[]) expect(Number.isFinite(l)).toBe(true);
    model.dispose();
    loaded.dispose();
    tf.dispose([x, y]);
  });

  it('finds a shipped checkpoint by name, and says which exist when it cannot', async () => {
    const name = `test-io-${process.pid}`;
    const lo = createLearnedOptimizer('mlp_lopt', { hiddenSize: 4 });
    const theta = lo.initTheta(1);
    const path = join(shippedCheckpointDir(), `${name}.lopt`);
    try {
      await saveLearnedOptimizer(path, lo, theta);
      const loaded = await loadLearnedOptimizer(name);
      expect(loaded.learnedOptimizer.arch).toBe('mlp_lopt');
      loaded.dispose();
    } finally {
      rmSync(path, { force: true });
      tf.dispose(Object.values(theta));
    }
    await expect(loadLearnedOptimizer('no-such-optimizer')).rejects.toThrow(
      /no checkpoint file 'no-such-optimizer' and no shipped checkpoint of that name in .*checkpoints\/ \(shipped: /,
    );
  });

  it('refuses checkpoints of unknown architectures or with theta that does not fit the config', async () => {
    const lo = createLearnedOptimizer('small_fc_lopt', { hiddenSize: 4 });
    const theta = lo.initTheta(2);
    const path = join(dir, 'bad.lopt');
    await saveLearnedOptimizer(path, lo, theta);
    const loaded = await loadLearnedOptimizer(path);
    const other = join(dir, 'hyper.lopt');
    await saveCheckpoint(other, { ...loaded.checkpoint, arch: 'hyper_lstm' });
    await expect(loadLearnedOptimizer(other)).rejects.toThrow(
      /hyper.lopt: unknown learned optimizer architecture 'hyper_lstm'; allowed: small_fc_lopt, mlp_lopt/,
    );
    const mismatch = join(dir, 'mismatch.lopt');
    await saveCheckpoint(mismatch, { ...loaded.checkpoint, config: { ...loaded.checkpoint.config, hiddenSize: 32 } });
    await expect(loadLearnedOptimizer(mismatch)).rejects.toThrow(
      /mismatch.lopt: theta 'mlp\/w0' has shape \[39,4\], small_fc_lopt with this config needs \[39,32\]/,
    );
    loaded.dispose();
    tf.dispose(Object.values(theta));
  });
});
