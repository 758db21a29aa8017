import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { installFastTile, uninstallFastTile } from '../src/backend/wasmFastTile.js';
import { Rng } from '../src/random/rng.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

/** Tiles with the stock wasm kernel and with the block-copy one; both must agree exactly. */
function both(x: tf.Tensor, reps: number[]): [number[], number[], number[], number[]] {
  uninstallFastTile();
  const want = tf.tile(x, reps);
  installFastTile();
  const got = tf.tile(x, reps);
  const r: [number[], number[], number[], number[]] = [Array.from(got.dataSync()), Array.from(want.dataSync()), got.shape, want.shape];
  tf.dispose([want, got]);
  return r;
}

describe('block-copy Tile on wasm', () => {
  it('replaces the stock kernel once installed', () => {
    uninstallFastTile();
    const stock = tf.getKernel(tf.Tile, 'wasm')!.kernelFunc;
    installFastTile();
    expect(tf.getKernel(tf.Tile, 'wasm')!.kernelFunc).not.toBe(stock);
  });

  it('equals the stock kernel for random shapes, reps and dtypes (rank 0 to 5)', () => {
    const rng = Rng.from('tile');
    for (let trial = 0; trial < 120; trial++) {
      const rank = rng.int(6);
      const shape = Array.from({ length: rank }, () => 1 + rng.int(4));
      const reps = Array.from({ length: rank }, () => (rng.next() < 0.3 ? 1 : 1 + rng.int(5)));
      const dtype = (['float32', 'int32', 'bool'] as const)[trial % 3]!;
      const size = shape.reduce((p, d) => p * d, 1);
      const values = Array.from({ length: size }, (_, i) => (dtype === 'bool' ? (i * 7) % 3 === 0 : dtype === 'int32' ? i * 3 - 5 : i * 0.5 - 1));
      const x = tf.tensor(values as number[], shape, dtype);
      const [got, want, gotShape, wantShape] = both(x, reps);
      expect(gotShape, `${dtype} ${shape} × ${reps}`).toEqual(wantShape);
      expect(got, `${dtype} ${shape} × ${reps}`).toEqual(want);
      x.dispose();
    }
  });

  it('serves broadcastTo, zero-size tensors and gradients', () => {
    const col = tf.tensor2d([1, 2, 3], [3, 1]);
    expect(tf.broadcastTo(col, [2, 3, 4]).arraySync()).toEqual([0, 1].map(() => [1, 2, 3].map((v) => [v, v, v, v])));
    expect(tf.tile(tf.zeros([0, 3]), [2, 2]).shape).toEqual([0, 6]);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.tile(x, [2, 3]), tf.reshape(tf.range(0, 24), [4, 6]))))(tf.ones([2, 2]));
    // d/dx of Σ tile(x)·w sums the weights of every copy of each element.
    expect(Array.from(g.dataSync())).toEqual([0 + 2 + 4 + 12 + 14 + 16, 1 + 3 + 5 + 13 + 15 + 17, 6 + 8 + 10 + 18 + 20 + 22, 7 + 9 + 11 + 19 + 21 + 23]);
  });

  it('frees what it allocates', () => {
    const x = tf.randomNormal([16, 1, 8]);
    tf.tile(x, [2, 64, 3]).dispose();
    const before = { tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() };
    for (let i = 0; i < 100; i++) tf.tile(x, [2, 64, 3]).dispose();
    expect({ tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() }).toEqual(before);
    x.dispose();
  });
});
