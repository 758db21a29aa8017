// The fused per-parameter learned-optimizer step on the native kernel (perParamStep.c): reads the
// gradients, parameters and accumulators of every tensor once, updates the accumulators and
// writes the updates, with no [P, C, N] feature block and one call per step. Its tfjs-ops twin —
// the reference it is tested against — is src/lopt/features.ts + perParamMlp.ts.
import * as tf from '@tensorflow/tfjs-core';
import { withHostArrays, type HostArray } from './hostArrays.js';
import { kernelThreads, type NativeKernels } from './registry.js';

/** 'velo': VeLO's 30 channels (μLO's accumulators; src/lopt/velo/veloNative.ts drives it). */
export type PerParamKind = 'momentum' | 'adafactor' | 'velo';

/** The kernel's kind codes (perParamStep.h). */
const KIND_CODE: Record<PerParamKind, number> = { momentum: 0, adafactor: 1, velo: 2 };

export interface PerParamArch {
  kind: PerParamKind;
  momenta: number;
  adafactorDecays: number;
  /** Channels before the global features (28 for μLO, 30 for VeLO, 2 + momenta for MLPLOpt). */
  channels: number;
  hidden: number;
  stepMult: number;
  expMult: number;
  /** > 0: gradients are clipped to ±gradClip before anything reads them (a NaN stays NaN). Default 0. */
  gradClip?: number;
}

/** Per-member MLP weights and decays, host copies: w0 [P, C+G, H] … b2 [P, 2]; decays [P, K]. */
export interface PerParamTheta {
  w0: Float32Array;
  b0: Float32Array;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  momentum: Float32Array;
  rms: Float32Array;
  adafactor: Float32Array;
}

export interface PerParamTensor {
  /** One member's shape (a scalar as [1]). */
  shape: number[];
  /** The Adafactor factored dims [d1, d0] (row accumulator: d0 reduced; col: d1), or null. */
  factored: [number, number] | null;
  mupScale: number;
  grad: tf.Tensor;
  param: tf.Tensor;
  /** Accumulators as features.ts lays them out (m, v, full | row, col). */
  acc: Record<string, tf.Tensor>;
}

export interface PerParamResult {
  updates: tf.Tensor[];
  acc: Record<string, tf.Tensor>[];
  /** [T·P]: 0 where a member's gradient of that tensor was not finite (its update is 0, its accumulators kept). */
  finite: Uint8Array;
}

/** Seconds inside the kernel of the last call: finite check + row/col; accumulators + channel statistics; features + MLP + update (the bench reads it). */
export const lastPerParamSeconds = new Float64Array(3);

/** Indices that map each parameter to its row / col accumulator element (cached per shape). */
interface FactorIndex {
  nRow: number;
  nCol: number;
  nRest: number;
  rowIndex: Int32Array;
  colIndex: Int32Array;
  restIndex: Int32Array;
}

const factorIndexCache = new Map<string, FactorIndex>();

function flatIndex(coords: number[], shape: number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + coords[d]!;
  return i;
}

/** Row accumulator: d0 reduced to 1; col: d1 reduced; rest: both (the row mean along d1). */
export function factorIndex(shape: number[], dims: [number, number]): FactorIndex {
  const key = `${shape.join(',')}:${dims.join(',')}`;
  const hit = factorIndexCache.get(key);
  if (hit) return hit;
  const [d1, d0] = dims;
  const rowShape = shape.map((s, i) => (i === d0 ? 1 : s));
  const colShape = shape.map((s, i) => (i === d1 ? 1 : s));
  const restShape = rowShape.map((s, i) => (i === d1 ? 1 : s));
  const N = shape.reduce((a, b) => a * b, 1);
  const nRow = N / shape[d0]!;
  const nCol = N / shape[d1]!;
  const nRest = nRow / shape[d1]!;
  const rowIndex = new Int32Array(N);
  const colIndex = new Int32Array(N);
  const restIndex = new Int32Array(nRow);
  const coords = new Array<number>(shape.length).fill(0);
  for (let n = 0; n < N; n++) {
    const c0 = coords[d0]!;
    coords[d0] = 0;
    const r = flatIndex(coords, rowShape);
    rowIndex[n] = r;
    const c1 = coords[d1]!;
    coords[d1] = 0;
    restIndex[r] = flatIndex(coords, restShape);
    coords[d0] = c0;
    colIndex[n] = flatIndex(coords, colShape);
    coords[d1] = c1;
    for (let d = shape.length - 1; d >= 0; d--) {
      coords[d]! += 1;
      if (coords[d]! < shape[d]!) break;
      coords[d] = 0;
    }
  }
  const out = { nRow, nCol, nRest, rowIndex, colIndex, restIndex };
  factorIndexCache.set(key, out);
  return out;
}

/** Fixed header entries before the per-tensor ones (addon.c HEADER_FIXED). */
const HEADER = 12;
const EMPTY_F32 = new Float32Array(0);
const EMPTY_I32 = new Int32Array(0);

export function perParamStep(
  native: NativeKernels,
  arch: PerParamArch,
  P: number,
  theta: PerParamTheta,
  globals: Float32Array,
  tensors: PerParamTensor[],
): PerParamResult {
  const T = tensors.length;
  // μLO and VeLO keep the Adafactor accumulators.
  const ada = arch.kind !== 'momentum';
  const G = globals.length / P;
  const header = new Float64Array(HEADER + 6 * T);
  header.set([
    KIND_CODE[arch.kind],
    P,
    T,
    arch.momenta,
    arch.adafactorDecays,
    arch.channels,
    arch.hidden,
    kernelThreads(),
    arch.stepMult,
    arch.expMult,
    G,
    arch.gradClip ?? 0,
  ]);
  const finite = new Uint8Array(T * P);
  // Per tensor: inputs grad, param, then the old accumulators in ACC_KEYS order; outputs update,
  // then the new accumulators (the kernel reads the old ones and writes the new).
  const accKeys = tensors.map((t) => ACC_KEYS.filter((k) => t.acc[k] !== undefined));
  const inputs = tensors.flatMap((t, i) => [t.grad, t.param, ...accKeys[i]!.map((k) => t.acc[k]!)]);
  const shapes = tensors.flatMap((t, i) => [t.grad.shape, ...accKeys[i]!.map((k) => t.acc[k]!.shape)]);
  const outputs = withHostArrays(inputs, shapes, [], (ins, outs) => {
    const arrays: ArrayBufferView[] = [
      theta.w0,
      theta.b0,
      theta.w1,
      theta.b1,
      theta.w2,
      theta.b2,
      theta.momentum,
      ada ? theta.rms : EMPTY_F32,
      ada ? theta.adafactor : EMPTY_F32,
      globals,
      finite,
      lastPerParamSeconds,
    ];
    let o = 0;
    let n = 0;
    tensors.forEach((t, i) => {
      const N = t.shape.reduce((a, b) => a * b, 1);
      const fi = ada && t.factored !== null ? factorIndex(t.shape, t.factored) : null;
      header.set([N, t.mupScale, fi ? 1 : 0, fi?.nRow ?? 0, fi?.nCol ?? 0, fi?.nRest ?? 0], HEADER + 6 * i);
      const grad = ins[n++]!;
      const param = ins[n++]!;
      const old: Record<string, HostArray> = {};
      for (const k of accKeys[i]!) old[k] = ins[n++]!;
      const update = outs[o++]!;
      const acc: Record<string, Float32Array> = {};
      for (const k of accKeys[i]!) acc[k] = outs[o++]!;
      arrays.push(
        grad,
        param,
        old['m']!,
        old['v'] ?? EMPTY_F32,
        old['full'] ?? EMPTY_F32,
        old['row'] ?? EMPTY_F32,
        old['col'] ?? EMPTY_F32,
        acc['m']!,
        acc['v'] ?? EMPTY_F32,
        acc['full'] ?? EMPTY_F32,
        acc['row'] ?? EMPTY_F32,
        acc['col'] ?? EMPTY_F32,
        fi?.rowIndex ?? EMPTY_I32,
        fi?.colIndex ?? EMPTY_I32,
        fi?.restIndex ?? EMPTY_I32,
        update,
      );
    });
    native.perParamStep(header, arrays);
  });
  const updates: tf.Tensor[] = [];
  const acc: Record<string, tf.Tensor>[] = [];
  let o = 0;
  tensors.forEach((_, i) => {
    updates.push(outputs[o++]!);
    const a: Record<string, tf.Tensor> = {};
    for (const k of accKeys[i]!) a[k] = outputs[o++]!;
    acc.push(a);
  });
  return { updates, acc, finite };
}

/** The kernels' moments entry (addon.c tensorMoments; perParamStep.h lopt_tensor_moments). */
interface MomentKernels {
  tensorMoments(p: Float32Array, m: Float32Array, v: Float32Array, P: number, K: number, threads: number, out: Float64Array): void;
}

/**
 * Per member of one tensor (param [P, ...] or [...], m [P, K, N], v [P, 1, N]), in double:
 * [Σp², then (c, Σ(x − c), Σ(x − c)²) for m_0 … m_{K−1} and v, c the member's first element] —
 * what VeLO's per-tensor LSTM reads (src/lopt/velo/veloNative.ts). [P · (1 + 3(K+1))].
 */
export function tensorMoments(native: NativeKernels, P: number, param: tf.Tensor, m: tf.Tensor, v: tf.Tensor): Float64Array {
  const K = m.shape[1]!;
  const out = new Float64Array(P * (1 + 3 * (K + 1)));
  withHostArrays([param, m, v], [], [], ([p, mm, vv]) => {
    (native as NativeKernels & MomentKernels).tensorMoments(p as Float32Array, mm as Float32Array, vv as Float32Array, P, K, kernelThreads(), out);
  });
  return out;
}

/** The accumulators the kernel knows, in its argument order. */
const ACC_KEYS = ['m', 'v', 'full', 'row', 'col'] as const;
