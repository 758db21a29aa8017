import { imageDecodeSeconds, isImageDatasetCached, loadImageDataset } from '../../tasks/data/images.js';
import type { BenchRow } from './row.js';

/**
 * Time to first MNIST batch data: the first `loadImageDataset('mnist', 8)` of this process (goal
 * < 2 s on the 2-core machine), and the part of it spent reading and checking the 28×28 IDX files.
 * Needs a ready tfjs backend (the resize runs on it). Values are seconds.
 */
export function benchDataLoading(): BenchRow[] {
  const wasCached = isImageDatasetCached('mnist', 8);
  const t0 = performance.now();
  const ds = loadImageDataset('mnist', 8);
  const seconds = (performance.now() - t0) / 1000;
  const decode = imageDecodeSeconds('mnist') ?? NaN;
  const note = wasCached ? 'already cached in this process before the bench: this is a cache hit, not a load' : 'first load in this process';
  return [
    {
      name: 'load mnist 8×8 (s)',
      value: seconds,
      goal: '< 2 s',
      ok: seconds < 2,
      detail: `${note}; ${ds.count} images, decode + bilinear resize + splits`,
    },
    {
      name: 'decode mnist 28×28 IDX (s)',
      value: decode,
      goal: '< 2 s',
      ok: decode < 2,
      detail: `read + validate train/t10k IDX files, once per process${wasCached ? ' (measured at the earlier load)' : ''}`,
    },
  ];
}
