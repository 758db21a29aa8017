import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';
// In Node the compiled kernels are lopt's kernels (the package entry registers them the same way).
import '../../src/kernels/native.js';

/** Switches this test process to `name` (tests pin backends explicitly rather than auto-select). */
export async function useBackend(name: 'cpu' | 'wasm'): Promise<void> {
  if (tf.getBackend() !== name) await tf.setBackend(name);
  await tf.ready();
}
