import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/random/rng.js';
import type { BatchStream, Split } from '../types.js';

/**
 * The stream fixing a task's problem instance (matrices, targets, data sets): a function of the
 * canonical name only, so every member and every process sees the same instance.
 */
export function instanceRng(name: string): Rng {
  return Rng.from(`lopt/synthetic/${name}`);
}

/** Member i's init stream: depends on its seed only. */
export function initRng(seed: number): Rng {
  return Rng.from(seed).fork('init');
}

/** Member i's batch stream for `split`: its seed only, a different stream per split. */
export function batchRng(seed: number, split: Split): Rng {
  return Rng.from(seed).fork('batches').fork(split);
}

/** Fills `size` values per member (member i from `rngs[i]`) into one buffer laid out [P, size]. */
export function perMember(rngs: readonly Rng[], size: number, fill: (rng: Rng, out: Float32Array) => void): Float32Array {
  const out = new Float32Array(rngs.length * size);
  rngs.forEach((rng, i) => fill(rng, out.subarray(i * size, (i + 1) * size)));
  return out;
}

export function fillNormal(rng: Rng, out: Float32Array, std = 1, mean = 0): void {
  for (let j = 0; j < out.length; j++) out[j] = mean + std * rng.normal();
}

/** Computes `make` once, on first use. */
export function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  let made = false;
  return () => {
    if (!made) {
      value = make();
      made = true;
    }
    return value as T;
  };
}

/**
 * A task-owned constant tensor made on first use; kept, because first use is usually inside a
 * caller's tf.tidy, which would otherwise dispose it when that scope ends.
 */
export function lazyConstant<T extends tf.Tensor>(make: () => T): () => T {
  return lazy(() => tf.keep(make()));
}

/**
 * Placeholder batches for deterministic tasks: { step: int32 [P] }, the step index. The loss
 * ignores it; it keeps the BatchStream contract (one row per seed) for generic trainers.
 */
export function stepBatches(members: number): BatchStream {
  let step = 0;
  return {
    next: () => ({ step: tf.fill([members], step++, 'int32') }),
  };
}
