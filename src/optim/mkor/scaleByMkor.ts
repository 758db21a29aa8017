// MKOR's preconditioning as a gradient transformation (Mozaffari et al. 2023; pinned to the
// authors' code, Mohammad-Mozaffari/mkor @3a0e3bb, mkor/mkor.py): on the steps t with
// t % every == 0 or t < warmupSteps it refreshes each layer's inverse factors from the step's layer
// statistics (factors.ts, statistics.ts); on every step it replaces each layer's kernel and bias
// gradients by A⁻¹·[∇W; ∇bᵀ]·G⁻¹ rescaled to the raw gradient's size (mkor.py 386–411). Other
// parameters pass through unchanged, as the reference hands their raw gradients to the
// first-order optimizer that follows.
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../tree/params.js';
import { stateLeafPaths, stateLeaves, type StateTree } from '../../tree/stateTree.js';
import { printable } from '../../text/printable.js';
import { readsStatisticsAt, type LayerSpec, type LayerStatisticsSchedule } from '../layerStatistics.js';
import type { GradientTransformation } from '../transform.js';
import { initialFactors, preconditionDense, updateFactors, type LayerFactors } from './factors.js';
import { inputVector, outputGradVector } from './statistics.js';
import { initialHybridState, updateHybrid, type HybridOptions, type HybridState } from './hybridSwitch.js';

export type MkorState = {
  /** Updates done so far (the reference's `steps`); named so that mkorClock finds it in any chain. */
  mkorStep: number;
  /** Per layer (by kernel name) its inverse factors and reset flags (factors.ts LayerFactors). */
  factors: { [layer: string]: { [part: string]: tf.Tensor } };
  /** MKOR-H's switch state (hybridSwitch.ts), or null for plain MKOR. */
  hybrid: HybridState | null;
};

const shapeText = (s: readonly number[]) => `[${s.join(',')}]`;

/** fanIn and fanOut of a layer's kernel, the population axis (if any) left out. */
function kernelDims(spec: LayerSpec, shape: readonly number[], population: boolean): { fanIn: number; fanOut: number } {
  const own = population ? shape.slice(1) : shape.slice();
  const rank = spec.kind === 'dense' ? 2 : 4;
  if (own.length !== rank) {
    const expected = spec.kind === 'dense' ? '[fanIn, fanOut]' : '[kh, kw, c_in, c_out]';
    throw new Error(
      `mkor: layer '${printable(spec.kernel)}' is ${spec.kind}, so its kernel must be ${population ? '[P, ' + expected.slice(1) : expected}; got ${shapeText(shape)}`,
    );
  }
  return { fanIn: own.slice(0, -1).reduce((p, d) => p * d, 1), fanOut: own[own.length - 1]! };
}

/**
 * MKOR's preconditioner over `layers` (each a kernel and an optional bias). `population`: the
 * parameters carry a leading member axis; every member has its own factors. Needs
 * `context.layerStatistics` for every layer on the statistics steps and throws without them.
 */
export function scaleByMkor(
  layers: readonly LayerSpec[],
  schedule: LayerStatisticsSchedule,
  population: boolean,
  hybrid: HybridOptions | null = null,
): GradientTransformation<MkorState> {
  return {
    init(params) {
      const factors: MkorState['factors'] = {};
      let members = 1;
      for (const spec of layers) {
        const kernel = params[spec.kernel];
        if (kernel === undefined) throw new Error(`mkor: layer kernel '${printable(spec.kernel)}' is not a parameter`);
        const dims = kernelDims(spec, kernel.shape, population);
        if (spec.bias !== null) {
          const bias = params[spec.bias];
          const want = population ? [kernel.shape[0]!, dims.fanOut] : [dims.fanOut];
          if (bias === undefined) throw new Error(`mkor: layer '${printable(spec.kernel)}' names bias '${printable(spec.bias)}', which is not a parameter`);
          if (shapeText(bias.shape) !== shapeText(want)) {
            throw new Error(
              `mkor: bias '${printable(spec.bias)}' of layer '${printable(spec.kernel)}' has shape ${shapeText(bias.shape)}, expected ${shapeText(want)}`,
            );
          }
        }
        const P = population ? kernel.shape[0]! : 1;
        members = P;
        const f = initialFactors(P, dims.fanIn + (spec.bias === null ? 0 : 1), dims.fanOut);
        factors[spec.kernel] = { ...f };
      }
      return { mkorStep: 0, factors, hybrid: hybrid === null ? null : initialHybridState(members) };
    },

    update(updates, state, _params, context) {
      const t = state.mkorStep;
      const refresh = readsStatisticsAt(schedule, t);
      const stats = context?.layerStatistics;
      if (refresh && stats === undefined) {
        throw new Error(
          `mkor: update ${t} refreshes the factors (every ${schedule.every} updates${schedule.warmupSteps > 0 ? `, and each of the first ${schedule.warmupSteps}` : ''}), so it needs context.layerStatistics; ` +
            `compute them whenever optimizer.wantsLayerStatistics(state) says so (Task.lossGradsAndStatistics)`,
        );
      }
      let switchState: HybridState | null = null;
      if (hybrid !== null) {
        const loss = context?.loss;
        if (loss === undefined) throw new Error('mkor: the hybrid switch (MKOR-H) reads the training loss; pass context.loss on every update');
        const P = state.hybrid!.smoothed.shape[0]!;
        const perMember = typeof loss === 'number' ? tf.fill([P], loss) : tf.reshape(loss, [P]);
        switchState = updateHybrid(state.hybrid!, perMember, t, hybrid);
      }
      /** The preconditioned gradient, or the raw one for members that switched to first order. */
      const unlessSwitched = (raw: tf.Tensor, pre: tf.Tensor): tf.Tensor => {
        if (switchState === null) return pre;
        const P = switchState.switched.shape[0]!;
        const rows = (x: tf.Tensor) => tf.reshape(x, [P, -1]);
        return tf.reshape(tf.where(tf.cast(tf.reshape(switchState.switched, [P, 1]), 'bool'), rows(raw), rows(pre)), raw.shape);
      };
      const out: Params = { ...updates };
      const factors: MkorState['factors'] = {};
      for (const spec of layers) {
        const kernelGrad = updates[spec.kernel];
        if (kernelGrad === undefined) throw new Error(`mkor: no update for layer kernel '${printable(spec.kernel)}'`);
        const dims = kernelDims(spec, kernelGrad.shape, population);
        let f = state.factors[spec.kernel] as unknown as LayerFactors;
        if (refresh) {
          const s = stats![spec.kernel];
          if (s === undefined) throw new Error(`mkor: context.layerStatistics has no entry for layer '${printable(spec.kernel)}'`);
          const asRows = (x: tf.Tensor, width: number, what: string): tf.Tensor3D => {
            const r = population ? x : tf.expandDims(x, 0);
            if (r.rank !== 3 || r.shape[0] !== f.aInv.shape[0] || r.shape[2] !== width) {
              throw new Error(
                `mkor: layer '${printable(spec.kernel)}' statistics '${what}' have shape ${shapeText(x.shape)}, expected ${population ? `[${f.aInv.shape[0]}, N, ${width}]` : `[N, ${width}]`}`,
              );
            }
            return r as tf.Tensor3D;
          };
          const a = inputVector(asRows(s.inputs, dims.fanIn, 'inputs'), spec.bias !== null);
          const g = outputGradVector(asRows(s.outputGrads, dims.fanOut, 'outputGrads'));
          f = updateFactors(f, a, g);
        }
        factors[spec.kernel] = { ...f };
        const P = f.aInv.shape[0];
        const biasGrad = spec.bias === null ? null : (tf.reshape(updates[spec.bias]!, [P, dims.fanOut]) as tf.Tensor2D);
        const pre = preconditionDense(tf.reshape(kernelGrad, [P, dims.fanIn, dims.fanOut]) as tf.Tensor3D, biasGrad, f);
        out[spec.kernel] = unlessSwitched(kernelGrad, tf.reshape(pre.kernel, kernelGrad.shape));
        if (spec.bias !== null) out[spec.bias] = unlessSwitched(updates[spec.bias]!, tf.reshape(pre.bias!, updates[spec.bias]!.shape));
      }
      return { updates: out, state: { mkorStep: t + 1, factors, hybrid: switchState } };
    },
  };
}

/** MKOR's update count from an optimizer state holding one scaleByMkor state (at any depth of chains and wrappers). */
export function mkorClock(inner: StateTree): number {
  const i = stateLeafPaths(inner).findIndex((p) => p === 'mkorStep' || p.endsWith('/mkorStep'));
  const count = i < 0 ? undefined : stateLeaves(inner)[i];
  if (typeof count !== 'number') throw new Error('mkor: the optimizer state holds no MKOR update count');
  return count;
}
