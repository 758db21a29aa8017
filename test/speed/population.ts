import * as tf from '@tensorflow/tfjs-core';
import { kernelThreads, nativeKernels, useKernels, type KernelMode } from '../../src/kernels/native.js';
import { lossAndGrads } from '../../tasks/lossAndGrads.js';
import { taskFromName } from '../../tasks/registry.js';
import type { Task } from '../../tasks/types.js';
import type { BenchRow } from './row.js';
import { medianMs } from './timing.js';

/** A timed forward + backward of the whole population (the inner step's cost before the optimizer). */
function populationStep(task: Task, population: number, mode: KernelMode): { run: () => void; dispose: () => void } {
  const seeds = Array.from({ length: population }, (_, i) => i + 1);
  const params = task.init(seeds);
  const batch = task.batches('train', seeds).next();
  return {
    run: () => {
      const prev = useKernels(mode);
      const { losses, grads } = lossAndGrads(task, params, batch);
      useKernels(prev);
      Object.values(grads)[0]!.dataSync();
      tf.dispose([losses, ...Object.values(grads)]);
    },
    dispose: () => tf.dispose([Object.values(params), Object.values(batch)]),
  };
}

/** Median ms of P=1 and P=P steps, warmed alike and timed in alternating rounds (JIT and machine noise hit both). */
function pairedMs(task: Task, population: number, mode: KernelMode): [number, number] {
  const one = populationStep(task, 1, mode);
  const many = populationStep(task, population, mode);
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

/**
 * The population axis amortizes per-op overhead: on the tfjs-ops path P = 16 members should cost
 * well under 16 single steps. The native kernel has almost no per-call overhead, so there the
 * cost grows with P like the arithmetic does; its P = 16 time is the figure to compare with
 * PyTorch's task forward + backward (1.1 ms on the peer's reference machine).
 */
export function benchPopulation(): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const name of ['mlp-mnist8-w32-d1-relu-b128-mup']) {
    const task = taskFromName(name);
    const [one, sixteen] = pairedMs(task, 16, 'ops');
    const r = sixteen / one;
    rows.push({
      name: `${name} fwd+bwd on tfjs ops, P=16 / P=1`,
      value: r,
      goal: '< 3',
      ok: r < 3,
      detail:
        `P=1 ${one.toFixed(2)} ms, P=16 ${sixteen.toFixed(2)} ms (${(16 / r).toFixed(1)}× the throughput of 16 single steps); ` +
        'each batched product runs as P per-member XNNPACK calls',
    });
    if (nativeKernels() !== null) {
      const [nOne, nSixteen] = pairedMs(task, 16, 'native');
      rows.push({
        name: `${name} fwd+bwd, P=16: tfjs ops / native kernel`,
        value: sixteen / nSixteen,
        goal: 'informational',
        ok: true,
        detail: `native P=16 ${nSixteen.toFixed(2)} ms, P=1 ${nOne.toFixed(3)} ms (${kernelThreads()} threads)`,
      });
    }
  }
  return rows;
}
