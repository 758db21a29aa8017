import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, parseBackendName } from '../src/backend/select.js';
import { WASM_FALLBACK_KERNELS } from '../src/backend/wasmFallbacks.js';
import { uniformValues } from './helpers/values.js';

const ALLOWED = ['auto', 'tensorflow', 'wasm', 'cpu'];

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const nativeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

const values = uniformValues;
const rand = (shape: number[], seed: number): tf.Tensor =>
  tf.tensor(
    values(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
  );

/** The gradients the fallback kernels serve: conv2d filter, depthwise input and filter, gather (embedding). */
function gradientsUnderTest(): Float32Array[] {
  const out = tf.tidy(() => {
    const x = rand([2, 9, 9, 3], 1);
    const convF = rand([3, 3, 3, 4], 2);
    const convR = rand([2, 5, 5, 4], 3);
    const conv = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'), convR)))([x, convF]);
    const dwF = rand([3, 3, 3, 2], 4);
    const dwR = rand([2, 9, 9, 6], 5);
    const dw = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), dwR)))([x, dwF]);
    // Embedding lookup, then pooled per segment: gather's gradient is an UnsortedSegmentSum.
    const emb = rand([20, 6], 6);
    const ids = tf.tensor2d([3, 7, 3, 19, 0, 5, 7, 7, 12, 1], [2, 5], 'int32');
    const seg = tf.tensor1d([0, 1, 1, 2, 3, 3, 0, 2, 2, 1], 'int32');
    const w = rand([4, 6], 7);
    const embed = tf.grads((e: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(tf.unsortedSegmentSum(tf.reshape(tf.gather(e, ids), [10, 6]), seg, 4), v)))([emb, w]);
    return [...conv, ...dw, ...embed];
  });
  const data = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return data;
}

describe('backend selection', () => {
  it('wasm lacks the fallback kernels natively (the premise of wasmFallbacks)', () => {
    // No initBackend has run in this process yet, so nothing was registered for wasm.
    for (const name of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'UnsortedSegmentSum']) {
      expect(tf.getKernel(name, 'wasm'), name).toBeUndefined();
    }
  });

  it('parses backend names and rejects others, naming the allowed ones', () => {
    for (const name of ALLOWED) expect(parseBackendName(name)).toBe(name);
    expect(parseBackendName(' WASM ')).toBe('wasm');
    expect(() => parseBackendName('webgl')).toThrow(/'webgl'.*'auto', 'tensorflow', 'wasm', 'cpu'/);
  });

  it('rejects an unknown backend from the option or from LOPT_BACKEND', async () => {
    await expect(initBackend({ backend: 'gpu' as 'cpu', log: () => {} })).rejects.toThrow(/'gpu'.*'auto', 'tensorflow', 'wasm', 'cpu'/);
    process.env['LOPT_BACKEND'] = 'fast';
    try {
      await expect(initBackend({ log: () => {} })).rejects.toThrow(/LOPT_BACKEND='fast'.*'auto', 'tensorflow'/);
    } finally {
      delete process.env['LOPT_BACKEND'];
    }
  });

  it.skipIf(nativeInstalled)("explains that 'tensorflow' needs tfjs-node when it is not installed", async () => {
    const err = await initBackend({ backend: 'tensorflow', log: () => {} }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/'tensorflow'/);
    expect(message).toMatch(/@tensorflow\/tfjs-node/);
    expect(message).toMatch(/'auto', 'tensorflow', 'wasm', 'cpu'/);
  });

  it('selects cpu explicitly, logs it once, and does nothing when asked again', async () => {
    const lines: string[] = [];
    expect(await initBackend({ backend: 'cpu', log: (l) => lines.push(l) })).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend({ backend: 'cpu', log: (l) => lines.push(l) })).toBe('cpu');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^lopt: backend cpu/);
  });

  it('takes the default from LOPT_BACKEND when no option is given', async () => {
    process.env['LOPT_BACKEND'] = 'wasm';
    try {
      const lines: string[] = [];
      expect(await initBackend({ log: (l) => lines.push(l) })).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^lopt: backend wasm \(.*XNNPACK fast matMul on;.*cpu fallbacks for Conv2DBackpropFilter/);
    } finally {
      delete process.env['LOPT_BACKEND'];
    }
  });

  it('registers every fallback kernel for wasm', async () => {
    await initBackend({ backend: 'wasm', log: () => {} });
    for (const name of WASM_FALLBACK_KERNELS) expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
  });

  it('shares buffers in wasm Identity (clone) and frees them with the last reference', async () => {
    await initBackend({ backend: 'wasm', log: () => {} });
    const backend = tf.engine().backend;
    const buffers = backend.numDataIds();
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    expect(backend.numDataIds()).toBe(buffers + 1);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
    expect(backend.numDataIds()).toBe(buffers);
  });

  it('makes conv2d, depthwiseConv2d and gather gradients work on wasm, equal to cpu within 1e-4', async () => {
    await initBackend({ backend: 'cpu', log: () => {} });
    const want = gradientsUnderTest();
    await initBackend({ backend: 'wasm', log: () => {} });
    const wasm = tf.engine().backend;
    const cpu = tf.findBackend('cpu');
    const before = { tensors: tf.memory().numTensors, wasm: wasm.numDataIds(), cpu: cpu?.numDataIds() };
    const got = gradientsUnderTest();
    expect(got).toHaveLength(want.length);
    got.forEach((g, i) => {
      const w = want[i]!;
      expect(g.length).toBe(w.length);
      let worst = 0;
      for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(g[j]! - w[j]!));
      expect(worst, `gradient ${i}`).toBeLessThan(1e-4);
    });
    // The fallbacks free their copies on both backends.
    expect({ tensors: tf.memory().numTensors, wasm: wasm.numDataIds(), cpu: cpu?.numDataIds() }).toEqual(before);
  });
});
