import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { mlpName, mlpTask, parseMlpName } from '../tasks/mlp.js';
import { taskFromName } from '../tasks/registry.js';
import { populationVsSingles, trainWithAdam } from './helpers/taskChecks.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe('MLP task names', () => {
  it('parses full and short names and prints the canonical one', () => {
    const c = parseMlpName('mlp-mnist16-w256-d3-tanh-b4096-sp');
    expect(c).toEqual({ dataset: 'mnist', imageSize: 16, width: 256, depth: 3, activation: 'tanh', batchSize: 4096, parametrization: 'sp' });
    expect(mlpName(c)).toBe('mlp-mnist16-w256-d3-tanh-b4096-sp');
    expect(mlpName(parseMlpName('mlp-fashion8-w32-d1'))).toBe('mlp-fashion8-w32-d1-relu-b128-mup');
    expect(taskFromName('mlp-mnist8-w32-d1').meta).toMatchObject({
      name: 'mlp-mnist8-w32-d1-relu-b128-mup',
      family: 'mlp',
      width: 32,
      depth: 1,
      batchSize: 128,
      dataset: 'mnist8',
      paramCount: 64 * 32 + 32 + 32 * 10 + 10,
    });
  });
  it('refuses bad names and impossible configs, saying what is valid', () => {
    expect(() => taskFromName('mlp-cifar8-w32-d1')).toThrow(
      /'mlp-cifar8-w32-d1' is not an MLP task name; expected mlp-\{mnist\|fashion\}\{8\|16\|28\}-w<width>/,
    );
    expect(() => taskFromName('mlp-mnist8-w0-d1')).toThrow('mlp task: width must be an integer in [1, 16384]; got 0');
    expect(() => taskFromName('mlp-mnist8-w32-d1-swish')).toThrow(/is not an MLP task name/);
    expect(() => mlpTask({ ...parseMlpName('mlp-mnist8-w32-d1'), activation: 'swish' as never })).toThrow(
      'mlp task: activation must be one of relu, tanh, gelu; got "swish"',
    );
    expect(() => taskFromName('mlp-mnist8-w8-d1-relu-b60000').batches('train', [1])).toThrow(/60000.*48000/);
    expect(() => taskFromName('resnet-50')).toThrow(/unknown task 'resnet-50'; task names have one of these forms:/);
  });
});

describe('MLP task', () => {
  it.each(['relu', 'tanh', 'gelu'])('%s: the P-batched loss and gradient equal P single-member evaluations', (act) => {
    const task = taskFromName(`mlp-mnist8-w16-d2-${act}-b8-mup`);
    expect(populationVsSingles(task, [5, 5, 9, 2])).toBeLessThan(1e-4);
  });

  it('SP twin too, and a different seed gives different parameters', () => {
    const task = taskFromName('mlp-fashion8-w8-d1-relu-b4-sp');
    expect(populationVsSingles(task, [1, 2, 3])).toBeLessThan(1e-4);
    const p = task.init([1, 2]);
    const k = p['layer0/kernel']!.arraySync() as number[][][];
    expect(k[0]![0]![0]).not.toBe(k[1]![0]![0]);
    tf.dispose(Object.values(p));
  });

  it('trains with Adam to a loss clearly below its initial loss', async () => {
    const r = await trainWithAdam(taskFromName('mlp-mnist8-w32-d1-relu-b64-sp'), 150, 3e-3);
    expect(r.last).toBeLessThan(0.5 * r.first);
  });

  it('normalizes the meta-loss as the reference: clip(l, 0, 1.5 ln 10), NaN/Inf → the maximum', () => {
    const task = taskFromName('mlp-mnist8-w8-d1');
    const out = task.normalizeLoss(tf.tensor1d([0.5, 100, Number.NaN, Infinity, -1])).dataSync();
    const max = 1.5 * Math.log(10);
    expect(Array.from(out).map((x) => Number(x.toFixed(5)))).toEqual([0.5, max, max, max, 0].map((x) => Number(x.toFixed(5))));
  });

  it('returns a NaN loss as NaN, never hides it', () => {
    const task = taskFromName('mlp-mnist8-w8-d1');
    const p = task.init([1]);
    const bad = { ...p, 'layer0/kernel': tf.fill(p['layer0/kernel']!.shape, Number.NaN) };
    const batch = task.batches('train', [1]).next();
    expect(Number.isNaN(task.loss(bad, batch).dataSync()[0])).toBe(true);
  });

  it('no tensor growth over 1,000 training steps', async () => {
    const task = taskFromName('mlp-mnist8-w16-d1-relu-b16');
    await trainWithAdam(task, 5, 1e-3);
    const before = tf.memory().numTensors;
    await trainWithAdam(task, 1000, 1e-3);
    expect(tf.memory().numTensors).toBe(before);
  });
});
