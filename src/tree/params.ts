import * as tf from '@tensorflow/tfjs-core';

/** A named, ordered map of tensors: model parameters, gradients or updates. */
export type Params = Record<string, tf.Tensor>;

export function paramNames(params: Params): string[] {
  return Object.keys(params);
}

/** Applies `fn` to every tensor, keeping names and order. */
export function mapParams(params: Params, fn: (t: tf.Tensor, name: string) => tf.Tensor): Params {
  const out: Params = {};
  for (const [name, t] of Object.entries(params)) out[name] = fn(t, name);
  return out;
}

/** Applies `fn` to matching entries of two maps with the same names (the first map's order). */
export function zipParams(a: Params, b: Params, fn: (x: tf.Tensor, y: tf.Tensor, name: string) => tf.Tensor): Params {
  const out: Params = {};
  for (const [name, x] of Object.entries(a)) {
    const y = b[name];
    if (y === undefined) throw new Error(`zipParams: '${name}' is missing from the second map`);
    out[name] = fn(x, y, name);
  }
  return out;
}

export function zerosLikeParams(params: Params): Params {
  return mapParams(params, (t) => tf.zerosLike(t));
}

/** The subset of `params` whose names satisfy `keep`, in order. */
export function pickParams(params: Params, keep: (name: string) => boolean): Params {
  const out: Params = {};
  for (const [name, t] of Object.entries(params)) if (keep(name)) out[name] = t;
  return out;
}

/** sqrt(Σ‖t‖²) over every tensor, as a scalar tensor. */
export function globalNorm(params: Params): tf.Scalar {
  return tf.tidy(() => {
    const squares = Object.values(params).map((t) => tf.sum(tf.square(t)));
    if (squares.length === 0) return tf.scalar(0);
    return tf.sqrt(tf.addN(squares)) as tf.Scalar;
  });
}

/** p + u for every tensor: the new parameters after an update. */
export function applyUpdates(params: Params, updates: Params): Params {
  return tf.tidy(() => zipParams(params, updates, (p, u) => tf.add(p, u)));
}

export function disposeParams(params: Params): void {
  for (const t of Object.values(params)) t.dispose();
}

export function parameterCount(params: Params): number {
  let n = 0;
  for (const t of Object.values(params)) n += t.size;
  return n;
}

/** Concatenates every tensor (flattened, in order) into one vector. */
export function flattenParams(params: Params): tf.Tensor1D {
  return tf.tidy(() => {
    const parts = Object.values(params).map((t) => tf.reshape(t, [-1]));
    return (parts.length === 0 ? tf.zeros([0]) : tf.concat(parts)) as tf.Tensor1D;
  });
}

/** Splits a vector back into tensors shaped like `like` (names, order and shapes). */
export function unflattenParams(flat: tf.Tensor1D, like: Params): Params {
  const total = parameterCount(like);
  if (flat.size !== total) {
    throw new Error(`unflattenParams: vector has ${flat.size} values, the tree needs ${total}`);
  }
  return tf.tidy(() => {
    const out: Params = {};
    let offset = 0;
    for (const [name, t] of Object.entries(like)) {
      out[name] = tf.reshape(tf.slice(flat, offset, t.size), t.shape);
      offset += t.size;
    }
    return out;
  });
}
