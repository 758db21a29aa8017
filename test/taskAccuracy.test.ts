// Classification tasks report accuracy per member, consistent with their loss's logits.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { accuracyPerMember } from '../tasks/normalize.js';
import { taskFromName } from '../tasks/registry.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe('accuracy', () => {
  it('counts argmax hits per member', () => {
    const logits = tf.tensor3d([
      [
        [2, 0],
        [0, 1],
        [1, 0],
      ],
      [
        [0, 3],
        [0, 1],
        [5, 0],
      ],
    ]);
    const labels = tf.tensor2d(
      [
        [0, 0, 0],
        [1, 1, 1],
      ],
      undefined,
      'int32',
    );
    expect(Array.from(accuracyPerMember(logits, labels).dataSync())).toEqual([Math.fround(2 / 3), Math.fround(2 / 3)]);
  });

  it('every classification task has it, in [0, 1] per member; synthetic regressions do not', () => {
    for (const name of ['mlp-mnist8-w16-d1', 'conv-mnist8-w4-b16-mup', 'transformer-mobydick-w16-d1-h2-t8-b4-mup', 'logreg-d8-c3-b16']) {
      const task = taskFromName(name);
      expect(task.accuracy, name).toBeDefined();
      const params = task.init([1, 2]);
      const batch = task.batches('test', [1, 2]).next();
      const acc = Array.from(task.accuracy!(params, batch).dataSync());
      expect(acc.length).toBe(2);
      for (const a of acc) expect(a >= 0 && a <= 1, `${name}: ${a}`).toBe(true);
      tf.dispose([...Object.values(params), ...Object.values(batch)]);
    }
    expect(taskFromName('quadratic-d4-k10').accuracy).toBeUndefined();
  });
});
