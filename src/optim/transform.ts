import type { Params } from '../tree/params.js';
import type { StateTree } from '../tree/stateTree.js';

export interface TransformResult<S extends StateTree = StateTree> {
  updates: Params;
  state: S;
}

/**
 * An optax-style gradient transformation: pure functions over named tensor maps.
 * `update` never disposes its inputs and may return input tensors unchanged (pass-through);
 * run it inside tf.tidy (Optimizer does) so that intermediates are freed.
 */
export interface GradientTransformation<S extends StateTree = StateTree> {
  init(params: Params): S;
  update(updates: Params, state: S, params: Params): TransformResult<S>;
}

export const identity: GradientTransformation<null> = {
  init: () => null,
  update: (updates, state) => ({ updates, state }),
};

/** Applies transformations in order; the state is the list of their states. */
export function chain(...transforms: GradientTransformation<any>[]): GradientTransformation<StateTree[]> {
  return {
    init: (params) => transforms.map((t) => t.init(params)),
    update(updates, state, params) {
      const next: StateTree[] = [];
      let u = updates;
      transforms.forEach((t, i) => {
        const r = t.update(u, state[i] as StateTree, params);
        u = r.updates;
        next.push(r.state);
      });
      return { updates: u, state: next };
    },
  };
}
