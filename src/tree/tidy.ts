import * as tf from '@tensorflow/tfjs-core';

/**
 * tf.tidy for a function returning any tree of tensors (params, optimizer state, records of
 * them): tensors in the result are kept, every other tensor made inside is disposed. tf.tidy's
 * TensorContainer type does not admit lopt's state trees (their number leaves, readonly arrays),
 * though tidy keeps any tensor reachable from the result; the one cast for that lives here.
 */
export function tidyTree<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}
