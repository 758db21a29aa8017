import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, beforeAll } from 'vitest';
import { createOptimizer } from '../src/optim/registry.js';
import type { Params } from '../src/tree/params.js';
import { disposeReplaced } from '../src/tree/stateTree.js';
import { loadOptimizerVectors, mismatch, type ReferenceCase } from './helpers/reference.js';
import { useBackend } from './helpers/backend.js';

const cases = loadOptimizerVectors();

function gradients(c: ReferenceCase, params: Params): Params {
  const out: Params = {};
  for (const [name, w] of Object.entries(params)) {
    if (c.gradients === 'quadratic') out[name] = tf.mul(w, 2);
    else if ('target' in c.gradients) out[name] = tf.sub(w, tf.tensor1d((c.gradients.target as Record<string, number[]>)[name]!));
    else out[name] = tf.tensor1d((c.gradients as Record<string, number[]>)[name]!);
  }
  return out;
}

describe.each(['cpu', 'wasm'] as const)('reference optimizer vectors on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('covers every optimizer the vectors name', () => {
    const names = new Set(cases.map((c) => c.optimizer));
    expect([...names].sort()).toEqual(['adam', 'adamw', 'lamb', 'lars', 'momentum', 'nesterov', 'sgd']);
  });

  it.each(cases.map((c) => [c.id, c] as const))('%s matches float64 reference to rtol 1e-5', (_id, c) => {
    const opt = createOptimizer(c.optimizer, c.options);
    let params: Params = {};
    for (const [name, w] of Object.entries(c.params)) params[name] = tf.tensor1d(w);
    let state = opt.init(params);
    // Tiny steps are below float32 resolution of w itself: follow the summed updates instead.
    const delta: Record<string, Float64Array> = {};
    for (const [name, w] of Object.entries(c.params)) delta[name] = new Float64Array(w.length);
    c.steps.forEach((expected, k) => {
      const grads = gradients(c, params);
      const r = opt.update(grads, state, params);
      for (const [name, u] of Object.entries(r.updates)) {
        const d = delta[name]!;
        u.dataSync().forEach((x, i) => (d[i]! += x));
      }
      const next: Params = {};
      for (const [name, p] of Object.entries(params)) next[name] = tf.add(p, r.updates[name]!);
      tf.dispose([Object.values(params), Object.values(grads), Object.values(r.updates)]);
      disposeReplaced(state.inner, r.state.inner);
      params = next;
      state = r.state;
      for (const [name, want] of Object.entries(expected)) {
        const w0 = c.params[name]!;
        const wantDelta = want.map((x, i) => x - w0[i]!);
        const tiny = wantDelta.every((d, i) => Math.abs(d) < 1e-3 * Math.abs(w0[i]!));
        const bad = tiny ? mismatch(delta[name]!, wantDelta, 1e-5, 1e-12) : mismatch(params[name]!.dataSync(), want, 1e-5, 1e-7);
        expect(bad, `${c.id} step ${k + 1} '${name}' (${tiny ? 'w − w0' : 'w'})`).toBeNull();
      }
    });
    tf.dispose([Object.values(params)]);
    tf.dispose(state.inner as tf.TensorContainer);
  });
});
