import * as tf from '@tensorflow/tfjs-core';

/**
 * Optimizer state: nested records/arrays whose leaves are tensors or plain numbers (step counts).
 * No typed arrays: tf.tidy walks them element by element.
 */
export type StateTree = tf.Tensor | number | null | StateTree[] | { [key: string]: StateTree };

export type StateLeaf = tf.Tensor | number;

function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

/** Every leaf in a deterministic order: arrays by index, records by key insertion order. */
export function stateLeaves(tree: StateTree): StateLeaf[] {
  const out: StateLeaf[] = [];
  const walk = (node: StateTree): void => {
    if (node === null) return;
    if (typeof node === 'number' || isTensor(node)) {
      out.push(node);
    } else if (Array.isArray(node)) {
      node.forEach(walk);
    } else {
      for (const key of Object.keys(node)) walk(node[key] as StateTree);
    }
  };
  walk(tree);
  return out;
}

/** A readable path for every leaf, in `stateLeaves` order ('1/mu/dense/kernel'). */
export function stateLeafPaths(tree: StateTree): string[] {
  const out: string[] = [];
  const walk = (node: StateTree, path: string): void => {
    if (node === null) return;
    if (typeof node === 'number' || isTensor(node)) {
      out.push(path);
    } else if (Array.isArray(node)) {
      node.forEach((child, i) => walk(child, path ? `${path}/${i}` : String(i)));
    } else {
      for (const key of Object.keys(node)) walk(node[key] as StateTree, path ? `${path}/${key}` : key);
    }
  };
  walk(tree, '');
  return out;
}

/** A copy of `tree` whose leaves are replaced, in `stateLeaves` order, by `leaves`. */
export function replaceLeaves(tree: StateTree, leaves: readonly StateLeaf[]): StateTree {
  let i = 0;
  const walk = (node: StateTree): StateTree => {
    if (node === null) return null;
    if (typeof node === 'number' || isTensor(node)) {
      const leaf = leaves[i++];
      if (leaf === undefined) throw new Error(`replaceLeaves: only ${leaves.length} leaves given`);
      return leaf;
    }
    if (Array.isArray(node)) return node.map(walk);
    const out: { [key: string]: StateTree } = {};
    for (const key of Object.keys(node)) out[key] = walk(node[key] as StateTree);
    return out;
  };
  const result = walk(tree);
  if (i !== leaves.length) {
    throw new Error(`replaceLeaves: the tree has ${i} leaves, ${leaves.length} were given`);
  }
  return result;
}

export function stateTensors(tree: StateTree): tf.Tensor[] {
  return stateLeaves(tree).filter(isTensor);
}

/** Disposes every tensor of `old` that is not also held by `keep` (transforms may pass state through). */
export function disposeReplaced(old: StateTree, keep: StateTree): void {
  const kept = new Set(stateTensors(keep));
  for (const t of stateTensors(old)) if (!kept.has(t)) t.dispose();
}

export function disposeState(tree: StateTree): void {
  for (const t of stateTensors(tree)) t.dispose();
}
