// The held-out check `npm start` prints: the learned optimizer and Adam at each learning rate,
// from the same initialization and batches.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { smallFcLopt } from '../src/lopt/smallFcLopt.js';
import { compareWithAdam } from '../src/meta/compareWithAdam.js';
import { flattenTheta } from '../src/meta/thetaVector.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe('compareWithAdam', () => {
  it('runs the learned optimizer and Adam per learning rate from the same start, without leaking tensors', () => {
    const lo = smallFcLopt({ mup: true });
    const thetaParams = lo.initTheta(0);
    const theta = flattenTheta(lo, thetaParams);
    tf.dispose(Object.values(thetaParams));
    const before = tf.memory().numTensors;
    const rows = compareWithAdam(lo, theta, { task: 'mlp-mnist8-w16-d1-relu-b32-sp', steps: 60, adamLrs: [1e-4, 1e-2], seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(rows.map((r) => r.optimizer)).toEqual(['learned (small_fc_lopt)', 'adam lr=0.0001', 'adam lr=0.01']);
    // Same initialization and first batch: the same first loss for every optimizer.
    for (const r of rows) expect(r.firstLoss).toBe(rows[0]!.firstLoss);
    // Adam at 1e-2 trains this task in 60 steps; at 1e-4 it barely moves.
    expect(rows[2]!.tailLoss).toBeLessThan(0.8 * rows[2]!.firstLoss);
    expect(rows[2]!.tailLoss).toBeLessThan(rows[1]!.tailLoss);
    for (const r of rows) expect(Number.isFinite(r.testLoss)).toBe(true);
  });
});
