import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { fastMatMulStats, installFastMatMul, uninstallFastMatMul } from '../src/backend/wasmFastMatMul.js';

/** Deterministic normal-ish values (sum of uniforms), so failures reproduce. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (let j = 0; j < 3; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      acc += s / 2 ** 32;
    }
    out[i] = (acc - 1.5) * 2;
  }
  return out;
}
const rand = (shape: number[], seed: number): tf.Tensor =>
  tf.tensor(
    values(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
  );

/** Runs f once with the stock wasm kernels and once with the fast path; returns both results as arrays. */
function bothWays(f: () => tf.Tensor | tf.Tensor[]): { orig: Float32Array[]; fast: Float32Array[]; shapes: number[][] } {
  const run = (): { data: Float32Array[]; shapes: number[][] } => {
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const data = list.map((t) => t.dataSync() as Float32Array);
    const shapes = list.map((t) => t.shape);
    tf.dispose(list);
    return { data, shapes };
  };
  uninstallFastMatMul();
  const orig = run();
  installFastMatMul();
  const fast = run();
  expect(fast.shapes).toEqual(orig.shapes);
  return { orig: orig.data, fast: fast.data, shapes: orig.shapes };
}

/** Largest |x−y| relative to the largest |y| (float32 summation order differs between the two kernels). */
function relErr(x: Float32Array, y: Float32Array): number {
  let diff = 0;
  let mag = 1e-30;
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs((x[i] ?? NaN) - (y[i] ?? NaN)));
    mag = Math.max(mag, Math.abs(y[i] ?? 0));
  }
  return x.length === y.length ? diff / mag : Infinity;
}

const RTOL = 1e-5;
const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;
/** (m, k, n): general sizes (odd ones leave every 4×4-tile remainder), 1-row, 1-col, k = 1, and one small enough for the stock kernel. */
const DIMS = [
  [24, 40, 30],
  [21, 35, 23],
  [1, 100, 90],
  [90, 100, 1],
  [100, 1, 90],
  [3, 4, 2],
] as const;
const BATCHES: Array<[string, number[], number[]]> = [
  ['2-D', [], []],
  ['[3]x[3]', [3], [3]],
  ['[3]x[1]', [3], [1]],
  ['[1]x[3]', [1], [3]],
  ['[2,3]x[2,3]', [2, 3], [2, 3]],
  ['[2,3]x[3]', [2, 3], [3]],
  ['[2,3]x[1,1]', [2, 3], [1, 1]],
];

function operandShapes(batchA: number[], batchB: number[], m: number, k: number, n: number, tA: boolean, tB: boolean) {
  return {
    a: [...batchA, ...(tA ? [k, m] : [m, k])],
    b: [...batchB, ...(tB ? [n, k] : [k, n])],
  };
}

describe('wasm fast matMul', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: () => {} });
  });

  it('uninstall restores the stock kernels, install is idempotent', () => {
    uninstallFastMatMul();
    const stock = tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc;
    installFastMatMul();
    installFastMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc).not.toBe(stock);
    uninstallFastMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc).toBe(stock);
    installFastMatMul();
  });

  it.each(BATCHES)('equals the stock kernel for batch %s, every transpose and edge size', (_name, batchA, batchB) => {
    let seed = 1;
    for (const [tA, tB] of TRANSPOSES) {
      for (const [m, k, n] of DIMS) {
        const shapes = operandShapes(batchA, batchB, m, k, n, tA, tB);
        const a = rand(shapes.a, seed++);
        const b = rand(shapes.b, seed++);
        const before = fastMatMulStats().fast;
        const { orig, fast } = bothWays(() => tf.matMul(a, b, tA, tB));
        const tookFastPath = fastMatMulStats().fast > before;
        const untouched = batchA.length + batchB.length === 0 && !tA && !tB;
        // Large products must really go through the fast path, or this test compares the stock kernel with itself.
        if (m * k * n >= 9000 && !untouched) expect(tookFastPath, `${shapes.a}·${shapes.b} tA=${tA} tB=${tB}`).toBe(true);
        expect(relErr(fast[0]!, orig[0]!), `${shapes.a}·${shapes.b} tA=${tA} tB=${tB}`).toBeLessThan(RTOL);
        tf.dispose([a, b]);
      }
    }
  });

  it('broadcasts batch dims the stock kernel gets wrong ([2,1]·[1,3]) correctly', () => {
    for (const [m, k, n] of [
      [3, 4, 5],
      [24, 40, 30],
    ] as const) {
      const a = rand([2, 1, m, k], 7);
      const b = rand([1, 3, k, n], 8);
      const got = tf.matMul(a, b);
      // Reference: explicit tiling to equal batches, computed by the stock kernel.
      uninstallFastMatMul();
      const want = tf.tidy(() => tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(b, [2, 1, 1, 1])));
      installFastMatMul();
      expect(got.shape).toEqual([2, 3, m, n]);
      expect(relErr(got.dataSync() as Float32Array, want.dataSync() as Float32Array)).toBeLessThan(RTOL);
      tf.dispose([a, b, got, want]);
    }
  });

  // tfjs's BatchMatMul gradient does not reduce broadcast batch dims (it throws on every
  // backend), so only equal batches are differentiable.
  it.each([
    ['2-D', [], []],
    ['[3]x[3]', [3], [3]],
    ['[2,3]x[2,3]', [2, 3], [2, 3]],
  ] as Array<[string, number[], number[]]>)('matMul gradients equal the stock kernel for batch %s', (_n, batchA, batchB) => {
    let seed = 100;
    for (const [tA, tB] of TRANSPOSES) {
      const [m, k, n] = [20, 33, 25];
      const shapes = operandShapes(batchA, batchB, m, k, n, tA, tB);
      const a = rand(shapes.a, seed++);
      const b = rand(shapes.b, seed++);
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB).concat([m, n]);
      const r = rand(outShape, seed++);
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), r)));
      const { orig, fast, shapes: gotShapes } = bothWays(() => g([a, b]));
      expect(gotShapes).toEqual([shapes.a, shapes.b]);
      for (let i = 0; i < 2; i++) expect(relErr(fast[i]!, orig[i]!), `grad ${i} tA=${tA} tB=${tB}`).toBeLessThan(RTOL);
      tf.dispose([a, b, r]);
    }
  });

  it('fused matMul (bias + activation) equals matMul + bias + activation, transposed and batched', () => {
    // Reference from unfused stock kernels: the stock wasm _FusedMatMul drops the bias whenever
    // it leaves XNNPACK's 2-D untransposed case (measured error ≈ max|bias|), the fast path does not.
    const activate = (x: tf.Tensor, act: string): tf.Tensor =>
      act === 'relu' ? tf.relu(x) : act === 'leakyrelu' ? tf.leakyRelu(x, 0.1) : act === 'sigmoid' ? tf.sigmoid(x) : x;
    let seed = 200;
    for (const [batchA, batchB] of [
      [[], []],
      [[3], [3]],
      [[3], [1]],
      [[1], [3]],
    ] as Array<[number[], number[]]>) {
      for (const [tA, tB] of TRANSPOSES) {
        // Large products and ones below the fast path's size threshold (which the stock kernel would get).
        for (const [activation, m, k, n] of [
          ['linear', 24, 40, 30],
          ['relu', 24, 40, 30],
          ['leakyrelu', 24, 40, 30],
          ['sigmoid', 24, 40, 30],
          ['relu', 4, 39, 30],
          ['linear', 7, 5, 30],
        ] as const) {
          const shapes = operandShapes(batchA, batchB, m, k, n, tA, tB);
          const a = rand(shapes.a, seed++);
          const b = rand(shapes.b, seed++);
          const bias = rand([30], seed++);
          uninstallFastMatMul();
          const want = tf.tidy(() => activate(tf.add(tf.matMul(a, b, tA, tB), bias), activation));
          installFastMatMul();
          const got = tf.fused.matMul({ a, b, transposeA: tA, transposeB: tB, bias, activation, leakyreluAlpha: 0.1 });
          expect(got.shape).toEqual(want.shape);
          const err = relErr(got.dataSync() as Float32Array, want.dataSync() as Float32Array);
          expect(err, `${shapes.a}·${shapes.b} ${activation} tA=${tA} tB=${tB}`).toBeLessThan(RTOL);
          tf.dispose([a, b, bias, got, want]);
        }
      }
    }
  });

  it('leaks neither tensors nor wasm memory over 200 fast matMuls', () => {
    const ops = [
      [rand([3, 40, 24], 1), rand([3, 30, 40], 2), true, true],
      [rand([4, 24, 40], 3), rand([1, 40, 30], 4), false, false],
      [rand([1, 24, 40], 5), rand([3, 30, 40], 6), false, true],
      [rand([64, 50], 7), rand([64, 30], 8), true, false],
    ] as const;
    const before = tf.memory();
    // The engine's numDataBuffers counts tensors' buffers only; the backend's count also sees
    // intermediates (transposes, slices) that never became tensors.
    const buffersBefore = tf.engine().backend.numDataIds();
    const fastBefore = fastMatMulStats().fast;
    tf.tidy(() => {
      for (let i = 0; i < 200; i++) {
        const [a, b, tA, tB] = ops[i % ops.length]!;
        tf.matMul(a, b, tA, tB);
      }
    });
    // Also outside tidy, disposed by hand.
    for (const [a, b, tA, tB] of ops) tf.matMul(a, b, tA, tB).dispose();
    const after = tf.memory();
    expect(fastMatMulStats().fast - fastBefore).toBe(204);
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
    tf.dispose(ops.flatMap(([a, b]) => [a, b]));
  });

  it('is several times faster than the stock kernel on a transposed product', () => {
    const a = rand([128, 784], 1);
    const b = rand([128, 256], 2);
    const median = (): number => {
      const ts: number[] = [];
      for (let i = 0; i < 9; i++) {
        const t0 = performance.now();
        const r = tf.matMul(a, b, true, false);
        r.dataSync();
        ts.push(performance.now() - t0);
        r.dispose();
      }
      return ts.sort((x, y) => x - y)[4]!;
    };
    uninstallFastMatMul();
    const stock = median();
    installFastMatMul();
    const fast = median();
    // Measured ≈ 10×; 2× leaves room for a loaded machine.
    expect(stock / fast).toBeGreaterThan(2);
    tf.dispose([a, b]);
  });
});
