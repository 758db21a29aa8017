import { OPTIMIZERS, type OptimizerName } from '../../src/optim/registry.js';
import type { Optimizer } from '../../src/optim/optimizer.js';
import { disposeParams, parameterCount } from '../../src/tree/params.js';
import { millionParamTree, optimizerStepMs } from './optimizerStep.js';
import type { BenchRow } from './row.js';

// MKOR reads layer statistics besides gradients: its own tests (test/mkor.test.ts) cover leaks and populations.
type GradientOnly = Exclude<OptimizerName, 'mkor' | 'mkorlamb'>;
const make: Record<GradientOnly, () => Optimizer> = {
  sgd: () => OPTIMIZERS.sgd({ learningRate: 0.01 }),
  momentum: () => OPTIMIZERS.momentum({ learningRate: 0.01 }),
  nesterov: () => OPTIMIZERS.nesterov({ learningRate: 0.01 }),
  adam: () => OPTIMIZERS.adam({}),
  adamw: () => OPTIMIZERS.adamw({}),
  muadam: () => OPTIMIZERS.muadam({ mupScale: (_n, s) => (s.length === 2 ? 1 / s[0]! : 1) }),
  lars: () => OPTIMIZERS.lars({ learningRate: 0.1, weightDecay: 1e-4, excludeFromWeightDecay: ['bias'], excludeFromTrustRatio: ['bias'] }),
  lamb: () => OPTIMIZERS.lamb({ weightDecay: 0.01, excludeFromWeightDecay: ['bias'] }),
  tvlars: () => OPTIMIZERS.tvlars({ learningRate: 0.1, weightDecay: 1e-4, excludeFromWeightDecay: ['bias'] }),
};

/** Time of one optimizer step (update + apply) for each optimizer, as a ratio to SGD's, in one run. */
export function benchOptimizerSteps(reps = 15): BenchRow[] {
  const grads = millionParamTree(100);
  const n = parameterCount(grads);
  const ms: Partial<Record<GradientOnly, number>> = {};
  for (const name of Object.keys(make) as GradientOnly[]) ms[name] = optimizerStepMs(make[name](), grads, reps);
  disposeParams(grads);
  const sgd = ms.sgd!;
  const rows: BenchRow[] = (Object.keys(ms) as GradientOnly[]).map((name) => ({
    name: `optimizer step ${name} / sgd (${(n / 1e6).toFixed(2)}M params)`,
    value: ms[name]! / sgd,
    goal: 'informational',
    ok: true,
    detail: `${ms[name]!.toFixed(2)} ms`,
  }));
  for (const name of ['lamb', 'lars', 'tvlars'] as const) {
    const r = ms[name]! / ms.adam!;
    rows.push({ name: `optimizer step ${name} / adam`, value: r, goal: '<= 2', ok: r <= 2 });
  }
  return rows;
}
