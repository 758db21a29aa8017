import { pickParams, type Params } from '../../tree/params.js';
import type { StateTree } from '../../tree/stateTree.js';
import type { GradientTransformation } from '../transform.js';

/**
 * Applies `inner` only to the tensors whose name satisfies `mask`; the others pass through
 * unchanged (optax masked). The inner state covers the masked tensors only.
 */
export function masked<S extends StateTree>(inner: GradientTransformation<S>, mask: (name: string) => boolean): GradientTransformation<S> {
  return {
    init: (params) => inner.init(pickParams(params, mask)),
    update(updates, state, params, context) {
      const r = inner.update(pickParams(updates, mask), state, pickParams(params, mask), context);
      const out: Params = {};
      for (const [name, u] of Object.entries(updates)) out[name] = mask(name) ? r.updates[name]! : u;
      return { updates: out, state: r.state };
    },
  };
}
