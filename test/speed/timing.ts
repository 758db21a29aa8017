import * as tf from '@tensorflow/tfjs-core';

/** Median wall time in ms of `fn` over `reps` runs after `warmup` runs; `fn` must force completion. */
export function medianMs(fn: () => void, reps: number, warmup = 3): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Blocks until every tensor in `ts` is computed (wasm/cpu are synchronous; tensorflow may not be). */
export function settle(ts: tf.Tensor[]): void {
  for (const t of ts) t.dataSync();
}
