import type * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import type { StateTree } from '../tree/stateTree.js';
import type { LayerStatisticsMap } from './layerStatistics.js';

export interface TransformResult<S extends StateTree = StateTree> {
  updates: Params;
  state: S;
}

/**
 * What a step knows besides gradients, state and parameters (optax's `extra_args`): the training
 * loss at the current parameters, for optimizers that read it (VeLO). A number, a scalar tensor,
 * or with a population axis one loss per member [P]. Transformations that do not read it ignore it.
 */
export interface UpdateContext {
  loss?: tf.Tensor | number;
  /**
   * Per layer, its inputs and output gradients on this step's batch (src/optim/layerStatistics.ts),
   * for optimizers that precondition with them (MKOR) on the steps they ask for them
   * (Optimizer.wantsLayerStatistics(state)). Others ignore it.
   */
  layerStatistics?: LayerStatisticsMap;
}

/**
 * An optax-style gradient transformation: pure functions over named tensor maps.
 * `update` never disposes its inputs and may return input tensors unchanged (pass-through);
 * run it inside tf.tidy (Optimizer does) so that intermediates are freed.
 */
export interface GradientTransformation<S extends StateTree = StateTree> {
  init(params: Params): S;
  update(updates: Params, state: S, params: Params, context?: UpdateContext): TransformResult<S>;
}

/**
 * A transformation whose state type is not known here: what chain(), masked() and the other
 * combinators take, each holding transformations of different state types. (`StateTree` would
 * not do: update takes the state, so a transformation of one state type is not one of another.)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTransformation = GradientTransformation<any>;

export const identity: GradientTransformation<null> = {
  init: () => null,
  update: (updates, state) => ({ updates, state }),
};

/** Applies transformations in order; the state is the list of their states. */
export function chain(...transforms: AnyTransformation[]): GradientTransformation<StateTree[]> {
  return {
    init: (params) => transforms.map((t) => t.init(params)),
    update(updates, state, params, context) {
      const next: StateTree[] = [];
      let u = updates;
      transforms.forEach((t, i) => {
        const r = t.update(u, state[i] as StateTree, params, context);
        u = r.updates;
        next.push(r.state);
      });
      return { updates: u, state: next };
    },
  };
}
