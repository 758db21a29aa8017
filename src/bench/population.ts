import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import { taskFromName } from '../../tasks/registry.js';
import type { Task } from '../../tasks/types.js';
import type { BenchRow } from './row.js';
import { medianMs } from './timing.js';

/** One forward + backward of the whole population (the inner step's cost before the optimizer). */
function stepMs(task: Task, population: number): number {
  const seeds = Array.from({ length: population }, (_, i) => i + 1);
  const params = task.init(seeds);
  const batch = task.batches('train', seeds).next();
  const names = Object.keys(params);
  const grad = tf.grads((...ws: tf.Tensor[]) => {
    const p: Params = {};
    names.forEach((n, i) => (p[n] = ws[i]!));
    return tf.sum(task.loss(p, batch)) as tf.Scalar;
  });
  const ms = medianMs(() => {
    const g = grad(names.map((n) => params[n]!));
    g[0]!.dataSync();
    tf.dispose(g);
  }, 30, 20);
  tf.dispose([Object.values(params), Object.values(batch)]);
  return ms;
}

/** The population axis amortizes per-op overhead: P = 16 members should cost well under 16 single steps. */
export function benchPopulation(): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const name of ['mlp-mnist8-w32-d1-relu-b128-mup']) {
    const task = taskFromName(name);
    const one = stepMs(task, 1);
    const sixteen = stepMs(task, 16);
    const r = sixteen / one;
    rows.push({
      name: `${name} fwd+bwd, P=16 / P=1`,
      value: r,
      goal: '< 3',
      ok: r < 3,
      detail: `P=1 ${one.toFixed(2)} ms, P=16 ${sixteen.toFixed(2)} ms (${(16 / r).toFixed(1)}× the throughput)`,
    });
  }
  return rows;
}
