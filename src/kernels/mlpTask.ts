// The image-MLP task's loss and gradients on the native kernel (mlpTask.c): one call per step for
// the whole population. Its tfjs-ops twin, the reference it is tested against, is tf.valueAndGrads
// of tasks/mlp.ts's loss.
import * as tf from '@tensorflow/tfjs-core';
import { withHostArrays } from './hostArrays.js';
import { kernelThreads, type NativeKernels } from './registry.js';

export const MLP_ACTIVATIONS = ['relu', 'tanh', 'gelu'] as const;

export interface MlpKernelSpec {
  /** Layer widths: input, hidden…, classes. */
  dims: number[];
  activation: (typeof MLP_ACTIVATIONS)[number];
  /** The readout's output multiplier (μP: 1/fan_in; SP: 1). */
  readoutMult: number;
}

/**
 * Loss per member [P] and the gradient of their sum for `weights` / `biases` (per layer [P, in, out] /
 * [P, out]) on x [P, B, in], integer labels y [P, B].
 */
export function mlpLossAndGrads(
  native: NativeKernels,
  spec: MlpKernelSpec,
  weights: tf.Tensor[],
  biases: tf.Tensor[],
  x: tf.Tensor,
  y: tf.Tensor,
): { losses: tf.Tensor1D; weightGrads: tf.Tensor[]; biasGrads: tf.Tensor[] } {
  const P = x.shape[0]!;
  const B = x.shape[1]!;
  const L = spec.dims.length - 1;
  const header = Int32Array.from([P, B, L, MLP_ACTIVATIONS.indexOf(spec.activation), kernelThreads(), ...spec.dims]);
  const labels = y.dtype === 'int32' ? y : tf.cast(y, 'int32');
  const params = weights.flatMap((w, l) => [w, biases[l]!]);
  const loss = new Float32Array(P);
  const grads = withHostArrays(
    [x, labels, ...params],
    params.map((p) => p.shape),
    params.map(() => null),
    ([hx, hy, ...hp], outs) => native.mlpLossAndGrads(header, spec.readoutMult, hx as Float32Array, hy as Int32Array, hp as Float32Array[], outs, loss),
  );
  if (labels !== y) labels.dispose();
  return {
    losses: tf.tensor1d(loss, 'float32'),
    weightGrads: grads.filter((_, i) => i % 2 === 0),
    biasGrads: grads.filter((_, i) => i % 2 === 1),
  };
}
