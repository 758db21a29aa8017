// μLO step cost on a ~1M-parameter MLP tree (what asTfjsOptimizer runs in model.fit): wall time on
// the native fused kernel and on the tfjs-ops path, the per-parameter MLP's FLOP rate against the
// best GEMM rate of the same engine (the native kernels' dense product on a 1024² square), and
// the ratio to Adam's step.
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { kernelThreads, nativeKernels, useKernels } from '../../src/kernels/native.js';
import { lastPerParamSeconds } from '../../src/kernels/perParamStep.js';
import { smallFcLopt, SMALL_FC_CHANNELS } from '../../src/lopt/smallFcLopt.js';
import { OPTIMIZERS } from '../../src/optim/registry.js';
import { disposeParams, parameterCount } from '../../src/tree/params.js';
import { millionParamTree, optimizerStepMs } from './optimizerStep.js';
import type { BenchRow } from './row.js';

const SQUARE = 1024;

/** Best GFLOP/s of the native dense product on a SQUARE² × SQUARE² product (median of reps). */
function nativeSquareGflops(reps: number): number {
  const native = nativeKernels()!;
  const a = Float32Array.from({ length: SQUARE * SQUARE }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = Float32Array.from({ length: SQUARE * SQUARE }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(SQUARE * SQUARE);
  const times: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    native.sgemm(a, b, c, SQUARE, SQUARE, SQUARE, kernelThreads());
    if (r > 0) times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return (2 * SQUARE ** 3) / (times[Math.floor(times.length / 2)]! / 1e3) / 1e9;
}

export function benchLearnedOptimizer(reps = 5): BenchRow[] {
  const lo = smallFcLopt();
  const hidden = lo.config['hiddenSize'] as number;
  const theta = lo.initTheta(0);
  const grads = millionParamTree(100);
  const n = parameterCount(grads);
  const mupScale = (_name: string, s: readonly number[]) => (s.length === 2 ? 1 / s[0]! : 1);
  const adam = optimizerStepMs(OPTIMIZERS.adam({}), grads, reps, 2);
  const rows: BenchRow[] = [];
  if (nativeKernels() === null) {
    const ops = optimizerStepMs(lo.optimizer(theta, { mupScale }), grads, reps, 2);
    rows.push({
      name: `μLO step, tfjs ops (${(n / 1e6).toFixed(2)}M params)`,
      value: ops,
      goal: 'informational (ms)',
      ok: true,
      detail: 'native kernels not built',
    });
  } else {
    // The pass that builds features, runs the MLP and writes the update, timed inside the kernel.
    let mlpSeconds = Infinity;
    const opt = lo.optimizer(theta, { mupScale });
    const stepMs = optimizerStepMs(opt, grads, reps, 2);
    // Re-run a few steps to read the kernel's own phase times (its minimum over reps).
    const probe = lo.optimizer(theta, { mupScale });
    let params = millionParamTree(1);
    let state = probe.init(params);
    for (let r = 0; r < reps; r++) {
      ({ params, state } = probe.step(params, grads, state));
      mlpSeconds = Math.min(mlpSeconds, lastPerParamSeconds[2]!);
    }
    disposeParams(params);
    tf.dispose(state.inner as tf.TensorContainer);
    const prev = useKernels('ops');
    const opsMs = optimizerStepMs(lo.optimizer(theta, { mupScale }), grads, Math.max(2, Math.floor(reps / 2)), 1);
    useKernels(prev);
    // The MLP's work as the kernel does it: 28 channel inputs (the 11 time features are a bias).
    const flopsPerParam = 2 * (SMALL_FC_CHANNELS * hidden + hidden * hidden + hidden * 2);
    const mlpRate = (flopsPerParam * n) / mlpSeconds / 1e9;
    const gemm = nativeSquareGflops(3);
    rows.push(
      {
        name: `μLO step, native kernel (${(n / 1e6).toFixed(2)}M params, hidden ${hidden}, ${kernelThreads()} threads)`,
        value: stepMs,
        goal: 'informational (ms)',
        ok: true,
        detail: `tfjs-ops path ${opsMs.toFixed(1)} ms (${(opsMs / stepMs).toFixed(1)}× slower)`,
      },
      {
        name: `μLO per-parameter MLP rate / native GEMM rate (${SQUARE}² square, same threads)`,
        value: mlpRate / gemm,
        goal: '>= 0.6',
        ok: mlpRate / gemm >= 0.6,
        detail: `MLP ${mlpRate.toFixed(1)} GFLOP/s (${(flopsPerParam / 1e3).toFixed(2)} kFLOP/param, timed with feature building and the update); GEMM ${gemm.toFixed(1)} GFLOP/s (the kernel's dense block over 64-column panels of a ${SQUARE}×${SQUARE}×${SQUARE} product)`,
      },
    );
  }
  const loMs = rows[0]!.value;
  rows.push({ name: 'μLO step / Adam step', value: loMs / adam, goal: 'informational', ok: true, detail: `adam ${adam.toFixed(1)} ms` });
  disposeParams(theta);
  disposeParams(grads);
  return rows;
}
