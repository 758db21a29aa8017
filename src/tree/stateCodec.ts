import * as tf from '@tensorflow/tfjs-core';
import { disposeState, replaceLeaves, stateLeafPaths, stateLeaves, type StateLeaf, type StateTree } from './stateTree.js';

/**
 * The one codec between optimizer state trees and plain data, used wherever state crosses a
 * boundary: truncation units (worker threads), the meta-trainer's outer optimizer (checkpoints
 * and continuation files) and the tfjs adapter (getWeights/setWeights).
 *
 * A tree's plain form is its leaves in `stateLeaves` order: a tensor leaf as a Float32Array of
 * its values (row-major), a number leaf as itself. The tree's structure and shapes are not
 * stored: decoding takes them from a template (the optimizer's own `init` for the same
 * parameters), so a plain form can only be read back into the layout it came from.
 */
export type PlainLeaf = Float32Array | number;

/** The leaves of `tree` as plain data (tensor values copied out). */
export function encodeState(tree: StateTree): PlainLeaf[] {
  return stateLeaves(tree).map((leaf) => (typeof leaf === 'number' ? leaf : Float32Array.from(leaf.dataSync() as Float32Array)));
}

/**
 * A new tree with the layout of `template` and the given leaves: plain arrays become new float32
 * tensors of the template's shapes, tensors are taken as they are (the caller's), numbers stay
 * numbers. Every leaf is checked against the template (count, kind, size or shape) before any
 * tensor is made; a mismatch throws naming `owner` and the leaf's path. The template is not
 * disposed.
 */
export function decodeState(template: StateTree, leaves: readonly (PlainLeaf | tf.Tensor)[], owner: string): StateTree {
  const slots = stateLeaves(template);
  const paths = stateLeafPaths(template);
  if (leaves.length !== slots.length) throw new Error(`${owner}: the state holds ${leaves.length} leaves, this optimizer's layout has ${slots.length}`);
  slots.forEach((slot, i) => {
    const leaf = leaves[i]!;
    const where = `${owner}: state leaf ${i + 1} ('${paths[i]}')`;
    if (typeof slot === 'number') {
      if (typeof leaf !== 'number' && !(leaf instanceof tf.Tensor && leaf.size === 1)) throw new Error(`${where} must be a number`);
    } else if (leaf instanceof tf.Tensor) {
      if (leaf.shape.join(',') !== slot.shape.join(',')) throw new Error(`${where} has shape [${leaf.shape.join(',')}], expected [${slot.shape.join(',')}]`);
    } else if (!(leaf instanceof Float32Array) || leaf.length !== slot.size) {
      throw new Error(
        `${where} holds ${leaf instanceof Float32Array ? `${leaf.length} values` : 'a number'}, expected ${slot.size} values [${slot.shape.join(',')}]`,
      );
    }
  });
  const built: StateLeaf[] = slots.map((slot, i) => {
    const leaf = leaves[i]!;
    if (typeof slot === 'number') return typeof leaf === 'number' ? leaf : (leaf as tf.Tensor).dataSync()[0]!;
    return leaf instanceof tf.Tensor ? leaf : tf.tensor(leaf as Float32Array, slot.shape, 'float32');
  });
  return replaceLeaves(template, built);
}

/** decodeState into a fresh template, which is disposed: `template` is built by `init()`. */
export function decodeStateFrom(init: () => StateTree, leaves: readonly (PlainLeaf | tf.Tensor)[], owner: string): StateTree {
  const template = init();
  try {
    return decodeState(template, leaves, owner);
  } finally {
    disposeState(template);
  }
}
