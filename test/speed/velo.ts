// VeLO's step on the ~1M-parameter MLP tree against Adam's, as model.fit would run it: the released
// configuration (LSTM 512, 256 banks; the LSTM runs once per tensor, the 30 → 4 → 4 → 3 MLP per parameter).
import { velo } from '../../src/lopt/velo/velo.js';
import { OPTIMIZERS } from '../../src/optim/registry.js';
import { disposeParams, parameterCount } from '../../src/tree/params.js';
import { millionParamTree, optimizerStepMs } from './optimizerStep.js';
import type { BenchRow } from './row.js';

export function benchVelo(reps = 5): BenchRow[] {
  const lo = velo();
  const theta = lo.initTheta(0);
  const grads = millionParamTree(100);
  const n = parameterCount(grads);
  const adam = optimizerStepMs(OPTIMIZERS.adam({}), grads, reps, 2);
  const veloMs = optimizerStepMs(lo.optimizer(theta, { totalSteps: 10_000 }), grads, reps, 2, { loss: 1.5 });
  disposeParams(theta);
  disposeParams(grads);
  return [
    {
      name: `VeLO step / Adam step (${(n / 1e6).toFixed(2)}M params, released sizes)`,
      value: veloMs / adam,
      goal: '<= 3',
      ok: veloMs / adam <= 3,
      detail: `velo ${veloMs.toFixed(1)} ms, adam ${adam.toFixed(1)} ms`,
    },
  ];
}
