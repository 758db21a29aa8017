// How a training loop gets the layer statistics MKOR reads (layerStatistics.ts) in the same forward
// and backward pass as the loss and gradients: the model's forward pass routes each reported
// layer's output through a tap, an identity whose gradient function records ∂loss/∂output, and the
// tap keeps the layer's input. Used by the tasks (Task.lossGradsAndStatistics) and by any custom
// training loop (see the README's MKOR section).
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import type { LayerStatistics } from './layerStatistics.js';

/** What a forward pass calls on each layer it reports; each method returns the output to continue with. */
export interface LayerTap {
  /**
   * A dense layer z = x·W (+ b): x [..., fanIn], z [..., fanOut], every leading axis a row (after
   * the population axis, when there is one).
   */
  dense(kernel: string, x: tf.Tensor, z: tf.Tensor): tf.Tensor;
  /**
   * A convolution z = conv(x, W) (+ b) of one member's images x [B, H, W, c_in], 'same' padding,
   * kernel [kh, kw, c_in, c_out], to z [B, Ho, Wo, c_out]. `member`: the member's index when the
   * parameters carry a population axis and the forward pass loops over members, else null.
   */
  conv(kernel: string, member: number | null, x: tf.Tensor4D, z: tf.Tensor4D, kernelSize: readonly [number, number], stride: number): tf.Tensor4D;
}

/** A tap that records nothing (the forward pass without statistics). */
export const NO_TAP: LayerTap = { dense: (_k, _x, z) => z, conv: (_k, _m, _x, z) => z };

/** One-hot kernel [kh, kw, c, kh·kw·c] that copies each input patch out in the kernel's row-major order. */
function patchKernel(kh: number, kw: number, c: number): tf.Tensor4D {
  const K = kh * kw * c;
  const data = new Float32Array(kh * kw * c * K);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let ch = 0; ch < c; ch++) data[((i * kw + j) * c + ch) * K + (i * kw + j) * c + ch] = 1;
  return tf.tensor4d(data, [kh, kw, c, K]);
}

/** Kept copies per layer: per member when the forward pass loops over members (stacked at the end), else one. */
type Recorded = { inputs: tf.Tensor[]; outputGrads: tf.Tensor[]; perMember: boolean };

/**
 * Runs `loss(params, tap)` (per member [P], or a scalar) forward and backward: its value, the
 * gradient of its sum with respect to every parameter, and every tapped layer's statistics
 * ([P, N, ·] with `population`, else [N, ·]). The caller disposes all three.
 */
export function lossGradsAndLayerStatistics<L extends tf.Tensor>(
  loss: (params: Params, tap: LayerTap) => L,
  params: Params,
  population: boolean,
): { losses: L; grads: Params; statistics: Record<string, LayerStatistics> } {
  const records = new Map<string, Recorded>();
  const slot = (kernel: string): Recorded => {
    let r = records.get(kernel);
    if (r === undefined) records.set(kernel, (r = { inputs: [], outputGrads: [], perMember: false }));
    return r;
  };
  /** z unchanged, with ∂loss/∂z (reduced by `reduce`) stored at `at` as the backward pass reaches it. */
  const recordGrad = (z: tf.Tensor, at: tf.Tensor[], index: number, reduce: (dy: tf.Tensor) => tf.Tensor): tf.Tensor =>
    tf.customGrad((zIn) => ({
      value: tf.clone(zIn as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        const g = dy as tf.Tensor;
        at[index] = tf.keep(reduce(g));
        return g;
      },
    }))(z);
  const tap: LayerTap = {
    dense(kernel, x, z) {
      const r = slot(kernel);
      if (r.inputs[0] !== undefined) throw new Error(`layer statistics: layer '${kernel}' was tapped twice in one forward pass`);
      const fanIn = x.shape[x.rank - 1]!;
      const fanOut = z.shape[z.rank - 1]!;
      const rows = (t: tf.Tensor, width: number) => (population ? tf.reshape(t, [t.shape[0]!, -1, width]) : tf.reshape(t, [-1, width]));
      r.inputs[0] = tf.keep(rows(x, fanIn));
      return recordGrad(z, r.outputGrads, 0, (dy) => rows(dy, fanOut));
    },
    conv(kernel, member, x, z, [kh, kw], stride) {
      const r = slot(kernel);
      const index = member ?? 0;
      r.perMember = member !== null;
      if (r.inputs[index] !== undefined) throw new Error(`layer statistics: layer '${kernel}' was tapped twice in one forward pass`);
      // Each example's input patches averaged over the output positions (the authors' unfold, then mean over L).
      r.inputs[index] = tf.keep(tf.tidy(() => tf.mean(tf.conv2d(x, patchKernel(kh, kw, x.shape[3]), stride as 1 | 2, 'same'), [1, 2])));
      return recordGrad(z, r.outputGrads, index, (dy) => tf.mean(dy, [1, 2])) as tf.Tensor4D;
    },
  };
  const names = Object.keys(params);
  let value: tf.Tensor;
  let gradList: tf.Tensor[];
  try {
    const f = (...ws: tf.Tensor[]) => {
      const p: Params = {};
      names.forEach((n, i) => (p[n] = ws[i]!));
      return loss(p, tap);
    };
    // Without dy the backward pass starts from ones of the loss's shape: the gradient of the sum.
    ({ value, grads: gradList } = tf.valueAndGrads(f)(names.map((n) => params[n]!)));
  } catch (e) {
    for (const r of records.values()) tf.dispose([...r.inputs, ...r.outputGrads]);
    throw e;
  }
  const grads: Params = {};
  names.forEach((n, i) => (grads[n] = gradList[i]!));
  const statistics: Record<string, LayerStatistics> = {};
  for (const [kernel, r] of records) {
    const merged = (list: tf.Tensor[]): tf.Tensor => {
      if (!r.perMember) return list[0]!;
      const stacked = tf.stack(list);
      tf.dispose(list);
      return stacked;
    };
    statistics[kernel] = { inputs: merged(r.inputs), outputGrads: merged(r.outputGrads) };
  }
  return { losses: value as L, grads, statistics };
}
