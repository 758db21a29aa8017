// The image-MLP task's loss and gradients on the native kernel (mlpTask.c): one call per step for
// the whole population. Its tfjs-ops twin, the reference it is tested against, is tf.valueAndGrads
// of tasks/mlp.ts's loss.
import * as tf from '@tensorflow/tfjs-core';
import { kernelThreads, type NativeKernels } from './native.js';

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
  const labels = y.dtype === 'int32' ? (y.dataSync() as Int32Array) : Int32Array.from(y.dataSync());
  const params: Float32Array[] = [];
  const grads: Float32Array[] = [];
  for (let l = 0; l < L; l++) {
    params.push(weights[l]!.dataSync() as Float32Array, biases[l]!.dataSync() as Float32Array);
    grads.push(new Float32Array(weights[l]!.size), new Float32Array(biases[l]!.size));
  }
  const loss = new Float32Array(P);
  native.mlpLossAndGrads(header, spec.readoutMult, x.dataSync() as Float32Array, labels, params, grads, loss);
  return {
    losses: tf.tensor1d(loss, 'float32'),
    weightGrads: weights.map((w, l) => tf.tensor(grads[2 * l]!, w.shape, 'float32')),
    biasGrads: biases.map((b, l) => tf.tensor(grads[2 * l + 1]!, b.shape, 'float32')),
  };
}
