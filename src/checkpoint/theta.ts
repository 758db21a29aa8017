import * as tf from '@tensorflow/tfjs-core';
import type { TensorTable } from './format.js';

/**
 * Tensors → the checkpoint's table, in the record's order. Copies each tensor's values (dataSync
 * may hand back the backend's own buffer, which must not end up shared with a checkpoint). Runs
 * outside tf.tidy: it creates no tensors, and the caller keeps ownership of `theta`.
 */
export function thetaToCheckpoint(theta: Record<string, tf.Tensor>): TensorTable {
  const table: TensorTable = { names: [], shapes: [], data: [] };
  for (const [name, t] of Object.entries(theta)) {
    // Meta-parameters are float32; any other dtype means a caller mixed up tensors.
    if (t.dtype !== 'float32') throw new Error(`thetaToCheckpoint: '${name}' has dtype ${t.dtype}; theta tensors must be float32`);
    table.names.push(name);
    table.shapes.push(t.shape.slice());
    table.data.push(new Float32Array(t.dataSync() as Float32Array));
  }
  return table;
}

/**
 * The table → float32 tensors named as in the checkpoint (the caller owns and disposes them).
 * Each tensor gets its own copy, so later changes to the checkpoint's arrays cannot reach it.
 */
export function thetaFromCheckpoint(table: TensorTable): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  table.names.forEach((name, i) => {
    const shape = table.shapes[i];
    const data = table.data[i];
    if (shape === undefined || data === undefined) throw new Error(`thetaFromCheckpoint: '${name}' has no shape or data`);
    out[name] = tf.tensor(data.slice(), shape, 'float32');
  });
  return out;
}
