import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import { taskFromName } from '../../tasks/registry.js';
import type { Task } from '../../tasks/types.js';
import type { BenchRow } from './row.js';
import { medianMs } from './timing.js';

/** A timed forward + backward of the whole population (the inner step's cost before the optimizer). */
function populationStep(task: Task, population: number): { run: () => void; dispose: () => void } {
  const seeds = Array.from({ length: population }, (_, i) => i + 1);
  const params = task.init(seeds);
  const batch = task.batches('train', seeds).next();
  const names = Object.keys(params);
  const grad = tf.grads((...ws: tf.Tensor[]) => {
    const p: Params = {};
    names.forEach((n, i) => (p[n] = ws[i]!));
    return tf.sum(task.loss(p, batch)) as tf.Scalar;
  });
  return {
    run: () => {
      const g = grad(names.map((n) => params[n]!));
      g[0]!.dataSync();
      tf.dispose(g);
    },
    dispose: () => tf.dispose([Object.values(params), Object.values(batch)]),
  };
}

/** Median ms of P=1 and P=P steps, warmed alike and timed in alternating rounds (JIT and machine noise hit both). */
function pairedMs(task: Task, population: number): [number, number] {
  const one = populationStep(task, 1);
  const many = populationStep(task, population);
  const t1: number[] = [];
  const tp: number[] = [];
  for (let round = 0; round < 5; round++) {
    t1.push(medianMs(one.run, 20, round === 0 ? 200 : 5));
    tp.push(medianMs(many.run, 20, round === 0 ? 100 : 5));
  }
  one.dispose();
  many.dispose();
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return [median(t1), median(tp)];
}

/** The population axis amortizes per-op overhead: P = 16 members should cost well under 16 single steps. */
export function benchPopulation(): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const name of ['mlp-mnist8-w32-d1-relu-b128-mup']) {
    const task = taskFromName(name);
    const [one, sixteen] = pairedMs(task, 16);
    const r = sixteen / one;
    rows.push({
      name: `${name} fwd+bwd, P=16 / P=1`,
      value: r,
      goal: '< 3',
      ok: r < 3,
      detail:
        `P=1 ${one.toFixed(2)} ms, P=16 ${sixteen.toFixed(2)} ms (${(16 / r).toFixed(1)}× the throughput of 16 single steps); ` +
        'each batched product runs as P per-member XNNPACK calls',
    });
  }
  return rows;
}
