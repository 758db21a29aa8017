// Per-member selection between two population-batched trees: how a meta-training particle that
// finished its episode takes fresh parameters and optimizer state while the others continue.
import * as tf from '@tensorflow/tfjs-core';
import type { StateTree } from './stateTree.js';

/**
 * A tree shaped like `kept` where member i comes from `fresh` when take[i] is true. Tensor leaves
 * must carry the population axis first ([P, ...]); arrays of P numbers (member step counts) are
 * picked per member; other numbers must agree. Returns new tensors (inside the caller's tidy).
 */
export function selectMembers<T extends StateTree>(kept: T, fresh: T, take: readonly boolean[]): T {
  const P = take.length;
  const mask = tf.tensor1d(
    take.map((b) => (b ? 1 : 0)),
    'bool',
  );
  const walk = (a: StateTree, b: StateTree, path: string): StateTree => {
    if (a === null) return null;
    if (a instanceof tf.Tensor) {
      if (!(b instanceof tf.Tensor) || a.shape[0] !== P || b.shape.join() !== a.shape.join()) {
        throw new Error(`selectMembers: '${path}' must be [${P}, ...] in both trees`);
      }
      const cond = tf.reshape(mask, [P, ...new Array<number>(a.rank - 1).fill(1)]);
      return tf.where(tf.broadcastTo(cond, a.shape), b, a);
    }
    if (typeof a === 'number') {
      if (a !== b) throw new Error(`selectMembers: '${path}' differs (${a} vs ${String(b)}) and has no member axis`);
      return a;
    }
    if (Array.isArray(a)) {
      if (!Array.isArray(b) || b.length !== a.length) throw new Error(`selectMembers: '${path}' arrays differ in length`);
      if (a.length === P && a.every((x) => typeof x === 'number')) {
        return a.map((x, i) => (take[i] ? (b[i] as number) : x));
      }
      return a.map((x, i) => walk(x, b[i]!, `${path}/${i}`));
    }
    const out: { [key: string]: StateTree } = {};
    const bo = b as { [key: string]: StateTree };
    for (const key of Object.keys(a)) out[key] = walk(a[key]!, bo[key]!, path ? `${path}/${key}` : key);
    return out;
  };
  return walk(kept, fresh, '') as T;
}
