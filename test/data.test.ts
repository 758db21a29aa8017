import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageBatches, tabularBatches, textBatches } from '../tasks/data/batches.js';
import { defaultSearchDirs, imageDecodeSeconds, isImageDatasetCached, loadImageDataset, type ImageDataset, type ImageSize } from '../tasks/data/images.js';
import { loadIris } from '../tasks/data/iris.js';
import { resizeImages } from '../tasks/data/resize.js';
import { loadText } from '../tasks/data/text.js';
import { SPLITS, type Batch, type Split } from '../tasks/types.js';
import { Rng } from '../src/random/rng.js';
import { useBackend } from './helpers/backend.js';

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lopt-data-'));
  tmpDirs.push(d);
  return d;
}

beforeAll(async () => {
  await useBackend('wasm');
});
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** Reads a batch's tensors as arrays and disposes them. */
function take(batch: Batch): { x: number[]; y: number[]; xShape: number[]; yShape: number[]; xDtype: string; yDtype: string } {
  const out = {
    x: Array.from(batch['x']!.dataSync()),
    y: Array.from(batch['y']!.dataSync()),
    xShape: batch['x']!.shape,
    yShape: batch['y']!.shape,
    xDtype: batch['x']!.dtype,
    yDtype: batch['y']!.dtype,
  };
  tf.dispose(Object.values(batch));
  return out;
}

/** TF2 tf.image.resize bilinear (half-pixel centers, no antialias), straight from its formula, in float64. */
function referenceResize(src: ArrayLike<number>, from: number, to: number): Float64Array {
  const scale = from / to;
  const axis = (o: number): [number, number, number] => {
    const x = (o + 0.5) * scale - 0.5;
    const f = Math.floor(x);
    return [Math.max(f, 0), Math.min(Math.ceil(x), from - 1), x - f];
  };
  const out = new Float64Array(to * to);
  for (let r = 0; r < to; r++) {
    const [r0, r1, ry] = axis(r);
    for (let c = 0; c < to; c++) {
      const [c0, c1, cx] = axis(c);
      const at = (y: number, x: number): number => src[y * from + x]!;
      const top = at(r0, c0) + (at(r0, c1) - at(r0, c0)) * cx;
      const bottom = at(r1, c0) + (at(r1, c1) - at(r1, c0)) * cx;
      out[r * to + c] = top + (bottom - top) * ry;
    }
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Minimal IDX bytes: magic 00 00 08 ndims, big-endian dims, data. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 8;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** A folder holding a tiny valid dataset (train 5, test 2); `patch` may overwrite a file afterwards. */
function tinyDataDir(patch?: (dir: string) => void): string {
  const dir = tmp();
  const px = (n: number): Uint8Array => Uint8Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256);
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([5, 28, 28], px(5)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([5], Uint8Array.from([0, 1, 2, 3, 9])));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([2, 28, 28], px(2))));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([2], Uint8Array.from([4, 5])));
  patch?.(dir);
  return dir;
}

function checkImageDataset(ds: ImageDataset, size: ImageSize): void {
  expect(ds.size).toBe(size);
  expect(ds.numClasses).toBe(10);
  expect(ds.count).toBe(70_000);
  expect(ds.images.length).toBe(70_000 * size * size);
  expect(ds.labels.length).toBe(70_000);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of ds.images) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  expect(lo).toBeGreaterThanOrEqual(0);
  expect(hi).toBeLessThanOrEqual(1);
  expect(hi).toBeGreaterThan(0.9);
  const perClass = new Array<number>(10).fill(0);
  for (const l of ds.labels) {
    expect(l >= 0 && l < 10).toBe(true);
    perClass[l]!++;
  }
  expect(Math.min(...perClass)).toBeGreaterThan(5000);

  expect(ds.splits.train.length).toBe(48_000);
  expect(ds.splits['inner-valid'].length).toBe(6_000);
  expect(ds.splits['outer-valid'].length).toBe(6_000);
  expect(ds.splits.test.length).toBe(10_000);
  const seen = new Uint8Array(ds.count);
  for (const s of SPLITS) for (const i of ds.splits[s]) seen[i]!++;
  expect(seen.every((c) => c === 1)).toBe(true); // disjoint and covering
  expect(ds.splits.test[0]).toBe(60_000);
  expect(ds.splits.test[9_999]).toBe(69_999);
  expect(Math.max(...ds.splits.train)).toBeLessThan(60_000);
}

describe('image datasets', () => {
  for (const size of [8, 16, 28] as const) {
    it(`mnist ${size}×${size}: shapes, ranges, labels, 80/10/10 splits of the 60k, test = the 10k`, () => {
      checkImageDataset(loadImageDataset('mnist', size), size);
    });
  }

  it('fashion-mnist 8×8 (Debian dataset-fashion-mnist or LOPT_DATA_DIR)', () => {
    const ds = loadImageDataset('fashion-mnist', 8);
    checkImageDataset(ds, 8);
    expect(ds.name).toBe('fashion-mnist');
    expect(ds.images).not.toEqual(loadImageDataset('mnist', 8).images.subarray(0, ds.images.length));
  });

  it('is cached: a second load returns the same object at once; sizes share one decode', () => {
    const first = loadImageDataset('mnist', 8);
    const decode = imageDecodeSeconds('mnist');
    expect(decode).toBeGreaterThan(0);
    const t0 = performance.now();
    const again = loadImageDataset('mnist', 8);
    expect(performance.now() - t0).toBeLessThan(50);
    expect(again).toBe(first);
    expect(isImageDatasetCached('mnist', 8)).toBe(true);
    expect(loadImageDataset('mnist', 16).labels).toBe(first.labels);
    expect(imageDecodeSeconds('mnist')).toBe(decode);
  });

  it('resizes as TF2 bilinear (half-pixel centers, no antialias): synthetic images', () => {
    const rng = Rng.from('resize-test');
    for (const [from, to] of [
      [28, 8],
      [28, 16],
      [5, 3],
      [4, 7],
    ] as const) {
      const n = 3;
      const px = Uint8Array.from({ length: n * from * from }, () => rng.int(256));
      const got = resizeImages(px, n, from, to);
      for (let k = 0; k < n; k++) {
        const src = Array.from(px.subarray(k * from * from, (k + 1) * from * from), (v) => v / 255);
        const want = referenceResize(src, from, to);
        expect(maxAbsDiff(got.subarray(k * to * to, (k + 1) * to * to), want)).toBeLessThan(1e-5);
      }
    }
  });

  it('resizes as TF2 bilinear: real MNIST images at 8 and 16 match the formula applied to the 28×28 ones', () => {
    const full = loadImageDataset('mnist', 28);
    for (const size of [8, 16] as const) {
      const small = loadImageDataset('mnist', size);
      for (const i of [0, 1, 12_345, 59_999, 60_000, 69_999]) {
        const want = referenceResize(full.images.subarray(i * 784, (i + 1) * 784), 28, size);
        const got = small.images.subarray(i * size * size, (i + 1) * size * size);
        expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
      }
    }
  });

  it('reads IDX files from a given folder, raw or gzipped, and splits them the same way', () => {
    const ds = loadImageDataset('fashion-mnist', 8, { searchDirs: [tinyDataDir()] });
    expect(ds.count).toBe(7);
    expect(Array.from(ds.labels)).toEqual([0, 1, 2, 3, 9, 4, 5]);
    expect(ds.splits.train.length).toBe(4);
    expect(Array.from(ds.splits.test)).toEqual([5, 6]);
    expect(ds.images.length).toBe(7 * 64);
  });
});

/** An 8×8 dataset whose image i is filled with i/1000, so a batch row tells which example it is. */
function indexedDataset(): ImageDataset {
  const count = 40;
  const images = new Float32Array(count * 64);
  for (let i = 0; i < count; i++) images.fill(i / 1000, i * 64, (i + 1) * 64);
  const range = (a: number, b: number): Int32Array => Int32Array.from({ length: b - a }, (_, k) => a + k);
  return {
    name: 'mnist',
    size: 8,
    numClasses: 10,
    count,
    images,
    labels: Int32Array.from({ length: count }, (_, i) => i % 10),
    splits: { train: range(0, 10), 'inner-valid': range(10, 20), 'outer-valid': range(20, 30), test: range(30, 40) },
  };
}

describe('image batches', () => {
  it('have shape [P, B, size²] float32 and [P, B] int32, from the asked split, an epoch without repeats', () => {
    const ds = indexedDataset();
    const stream = imageBatches(ds, 'inner-valid', [1, 2], 3);
    const epoch: number[][] = [[], []];
    for (let k = 0; k < 3; k++) {
      const b = take(stream.next());
      expect(b.xShape).toEqual([2, 3, 64]);
      expect(b.yShape).toEqual([2, 3]);
      expect(b.xDtype).toBe('float32');
      expect(b.yDtype).toBe('int32');
      for (let row = 0; row < 6; row++) {
        const i = Math.round(b.x[row * 64]! * 1000);
        expect(i >= 10 && i < 20).toBe(true);
        expect(b.y[row]).toBe(i % 10);
        epoch[Math.floor(row / 3)]!.push(i);
      }
    }
    for (const member of epoch) expect(new Set(member).size).toBe(9); // 3 batches of 3 from 10: no repeats
  });

  it('are reproducible; equal seeds give identical members; different seeds differ; member i = stream of seeds[i]', () => {
    const ds = loadImageDataset('mnist', 8);
    const draw = (seeds: number[], n: number, split: Split = 'train'): ReturnType<typeof take>[] => {
      const s = imageBatches(ds, split, seeds, 16);
      return Array.from({ length: n }, () => take(s.next()));
    };
    expect(draw([3, 3, 9], 3)).toEqual(draw([3, 3, 9], 3));
    const [pop] = draw([3, 3, 9], 1);
    const D = 16 * 64;
    expect(pop!.x.slice(0, D)).toEqual(pop!.x.slice(D, 2 * D));
    expect(pop!.x.slice(D, 2 * D)).not.toEqual(pop!.x.slice(2 * D, 3 * D));
    const popBatches = draw([3, 5, 9], 4);
    const single = draw([9], 4);
    for (let k = 0; k < 4; k++) {
      expect(popBatches[k]!.x.slice(2 * D)).toEqual(single[k]!.x);
      expect(popBatches[k]!.y.slice(32)).toEqual(single[k]!.y);
    }
    expect(draw([3], 1, 'test')[0]!.y).not.toEqual(draw([3], 1, 'train')[0]!.y);
  });

  it('do not grow the tensor count over 1,000 disposed batches', () => {
    const stream = imageBatches(loadImageDataset('mnist', 8), 'train', [1, 2], 32);
    tf.dispose(Object.values(stream.next()));
    const before = tf.memory().numTensors;
    for (let k = 0; k < 1000; k++) tf.dispose(Object.values(stream.next()));
    expect(tf.memory().numTensors).toBe(before);
    const text = textBatches(loadText('moby-dick'), 'train', [1], 4, 16);
    const iris = tabularBatches(loadIris(), 'train', [1], 8);
    for (let k = 0; k < 200; k++) tf.dispose([...Object.values(text.next()), ...Object.values(iris.next())]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('text', () => {
  it('moby-dick: sorted distinct character vocab, codes in range, contiguous 80/5/5/10 splits; cached', () => {
    const ds = loadText('moby-dick');
    expect(loadText('moby-dick')).toBe(ds);
    expect(ds.codes.length).toBeGreaterThan(1_100_000);
    expect(ds.vocabSize).toBe(ds.vocab.length);
    expect(new Set(ds.vocab).size).toBe(ds.vocab.length);
    expect([...ds.vocab].sort()).toEqual(ds.vocab);
    for (const c of ['a', 'Z', ' ', '\n', '.']) expect(ds.vocab).toContain(c);
    expect(ds.codes.every((c) => c >= 0 && c < ds.vocabSize)).toBe(true);
    const n = ds.codes.length;
    expect(ds.splits.train.start).toBe(0);
    expect(ds.splits.test.end).toBe(n);
    for (let k = 1; k < SPLITS.length; k++) expect(ds.splits[SPLITS[k]!].start).toBe(ds.splits[SPLITS[k - 1]!].end);
    const frac = (s: Split): number => (ds.splits[s].end - ds.splits[s].start) / n;
    expect(frac('train')).toBeCloseTo(0.8, 4);
    expect(frac('inner-valid')).toBeCloseTo(0.05, 4);
    expect(frac('outer-valid')).toBeCloseTo(0.05, 4);
    expect(frac('test')).toBeCloseTo(0.1, 4);
    const decoded = Array.from(ds.codes.subarray(0, 40_000), (c) => ds.vocab[c]).join('');
    expect(decoded).toContain('CHAPTER 1. Loomings.\n\nCall me Ishmael.');
  });

  it('batches: [P, B, T] int32 windows inside the split, y = x shifted by one; seeded like images', () => {
    const ds = loadText('moby-dick');
    const { start, end } = ds.splits['outer-valid'];
    const splitText = Array.from(ds.codes.subarray(start, end), (c) => ds.vocab[c]).join('');
    const b = take(textBatches(ds, 'outer-valid', [4, 4], 3, 20).next());
    expect(b.xShape).toEqual([2, 3, 20]);
    expect(b.yShape).toEqual([2, 3, 20]);
    expect(b.xDtype).toBe('int32');
    expect(b.yDtype).toBe('int32');
    expect(b.x.slice(0, 60)).toEqual(b.x.slice(60));
    for (let row = 0; row < 6; row++) {
      const x = b.x.slice(row * 20, row * 20 + 20);
      const y = b.y.slice(row * 20, row * 20 + 20);
      expect(y.slice(0, 19)).toEqual(x.slice(1));
      const window = [...x, y[19]!].map((c) => ds.vocab[c]).join('');
      expect(splitText.includes(window)).toBe(true);
    }
    const again = take(textBatches(ds, 'outer-valid', [4], 3, 20).next());
    expect(again.x).toEqual(b.x.slice(0, 60));
    expect(take(textBatches(ds, 'outer-valid', [5], 3, 20).next()).x).not.toEqual(again.x);
  });
});

describe('iris', () => {
  it('150 × 4 features, 3 classes, 60/10/10/20 splits, standardised on train; cached', () => {
    const ds = loadIris();
    expect(loadIris()).toBe(ds);
    expect([ds.count, ds.numFeatures, ds.numClasses]).toEqual([150, 4, 3]);
    expect(ds.features.length).toBe(600);
    expect(SPLITS.map((s) => ds.splits[s].length)).toEqual([90, 15, 15, 30]);
    const seen = new Uint8Array(150);
    for (const s of SPLITS) for (const i of ds.splits[s]) seen[i]!++;
    expect(seen.every((c) => c === 1)).toBe(true);
    expect(new Set(ds.labels)).toEqual(new Set([0, 1, 2]));
    for (let j = 0; j < 4; j++) {
      const v = Array.from(ds.splits.train, (i) => ds.features[i * 4 + j]!);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
      expect(mean).toBeCloseTo(0, 5);
      expect(variance).toBeCloseTo(1, 4);
    }
    const b = take(tabularBatches(ds, 'test', [1, 1], 5).next());
    expect(b.xShape).toEqual([2, 5, 4]);
    expect(b.yShape).toEqual([2, 5]);
    expect(b.xDtype).toBe('float32');
    expect(b.yDtype).toBe('int32');
    expect(b.x.slice(0, 20)).toEqual(b.x.slice(20));
  });
});

describe('bad input fails before any work, saying what was asked and what is valid', () => {
  const images = (): ImageDataset => indexedDataset();

  it('batch sizes, sequence lengths and seeds', () => {
    const before = tf.memory().numTensors;
    expect(() => imageBatches(images(), 'train', [1], 11)).toThrow(/batchSize 11 .*10 examples.*1\.\.10/);
    // An evaluation split smaller than the batch is used whole (b8192 against 6,000 inner-valid examples).
    const whole = imageBatches(images(), 'inner-valid', [1, 2], 11).next();
    expect(whole['x']!.shape).toEqual([2, 10, 64]);
    const xs = whole['x']!.dataSync();
    for (const p of [0, 1]) {
      const ids = Array.from({ length: 10 }, (_, b) => Math.round(xs[(p * 10 + b) * 64]! * 1000)).sort((a, b) => a - b);
      expect(ids).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    }
    tf.dispose(Object.values(whole));
    for (const bad of [0, -3, 1.5, NaN]) {
      expect(() => imageBatches(images(), 'train', [1], bad)).toThrow(/batchSize .* must be a positive integer/);
    }
    expect(() => imageBatches(images(), 'train', [], 2)).toThrow(/seeds is empty/);
    expect(() => imageBatches(images(), 'train', [1, NaN], 2)).toThrow(/seeds\[1\] = NaN/);
    expect(() => imageBatches(images(), 'validation' as Split, [1], 2)).toThrow(/unknown split 'validation'.*inner-valid/);
    expect(() => tabularBatches(loadIris(), 'train', [1], 91)).toThrow(/batchSize 91 .*90 examples/);
    const text = loadText('moby-dick');
    const len = text.splits['inner-valid'].end - text.splits['inner-valid'].start;
    expect(() => textBatches(text, 'inner-valid', [1], 2, len)).toThrow(
      new RegExp(`seqLen ${len} needs ${len + 1} characters .*holds ${len}.*1\\.\\.${len - 1}`),
    );
    expect(() => textBatches(text, 'train', [1], 2, 0)).toThrow(/seqLen 0 must be a positive integer/);
    expect(() => textBatches(text, 'train', [1], 0, 8)).toThrow(/batchSize 0/);
    expect(() => textBatches(text, 'train', [], 2, 8)).toThrow(/seeds is empty/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('unknown dataset names and sizes', () => {
    expect(() => loadImageDataset('cifar10' as 'mnist', 8)).toThrow(/unknown dataset 'cifar10'.*mnist, fashion-mnist/);
    expect(() => loadImageDataset('mnist', 12 as ImageSize)).toThrow(/image size 12 .*8, 16, 28/);
    expect(() => loadText('war-and-peace' as 'moby-dick')).toThrow(/unknown text dataset 'war-and-peace'/);
  });

  it('missing Fashion-MNIST files: names every folder looked in and how to install them', () => {
    const empty = tmp();
    const err = (): unknown => loadImageDataset('fashion-mnist', 8, { searchDirs: [empty, join(empty, 'nope')] });
    expect(err).toThrow(/'fashion-mnist'/);
    expect(err).toThrow(empty);
    expect(err).toThrow(join(empty, 'nope'));
    expect(err).toThrow(/apt-get install dataset-fashion-mnist/);
    expect(err).toThrow(/LOPT_DATA_DIR/);
  });

  it('LOPT_DATA_DIR is looked in first, read when loading', () => {
    const empty = tmp();
    const saved = process.env['LOPT_DATA_DIR'];
    process.env['LOPT_DATA_DIR'] = empty;
    try {
      expect(defaultSearchDirs('fashion-mnist')).toEqual([join(empty, 'fashion-mnist'), empty, '/usr/share/datasets/fashion-mnist']);
      if (!existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')) {
        // Debian package absent: the default load must fail naming every path it tried.
        const err = (): unknown => loadImageDataset('fashion-mnist', 16);
        expect(err).toThrow(empty);
        expect(err).toThrow('/usr/share/datasets/fashion-mnist');
        expect(err).toThrow(/apt-get install dataset-fashion-mnist/);
      }
    } finally {
      if (saved === undefined) delete process.env['LOPT_DATA_DIR'];
      else process.env['LOPT_DATA_DIR'] = saved;
    }
  });

  it('truncated or malformed IDX files: names the file and what is wrong', () => {
    const load = (dir: string): unknown => loadImageDataset('fashion-mnist', 8, { searchDirs: [dir] });
    const trainImages = (dir: string): string => join(dir, 'train-images-idx3-ubyte');
    const short = tinyDataDir((d) => writeFileSync(trainImages(d), idx([5, 28, 28], new Uint8Array(3 * 784))));
    expect(() => load(short)).toThrow(`malformed IDX file ${trainImages(short)}: data is short`);
    const header = tinyDataDir((d) => writeFileSync(trainImages(d), new Uint8Array(10)));
    expect(() => load(header)).toThrow(`${trainImages(header)}: 10 bytes, shorter than its 16-byte header`);
    const magic = tinyDataDir((d) => {
      const bytes = idx([5, 28, 28], new Uint8Array(5 * 784));
      bytes[2] = 0x0d; // float32 instead of unsigned bytes
      writeFileSync(trainImages(d), bytes);
    });
    expect(() => load(magic)).toThrow(`${trainImages(magic)}: magic 00 00 0d 03, expected 00 00 08 03`);
    const dims = tinyDataDir((d) => writeFileSync(trainImages(d), idx([5, 27, 28], new Uint8Array(5 * 27 * 28))));
    expect(() => load(dims)).toThrow(`${trainImages(dims)}: dimensions [5, 27, 28], expected [N>0, 28, 28]`);
    const gz = join(tinyDataDir(), 't10k-images-idx3-ubyte.gz');
    writeFileSync(gz, gzipSync(idx([2, 28, 28], new Uint8Array(2 * 784))).subarray(0, 40));
    expect(() => load(join(gz, '..'))).toThrow(`IDX file ${gz} is a corrupt or truncated gzip stream`);
    const labels = tinyDataDir((d) => writeFileSync(join(d, 'train-labels-idx1-ubyte'), idx([4], new Uint8Array(4))));
    expect(() => load(labels)).toThrow(/holds 5 images but .*train-labels-idx1-ubyte holds 4 labels/);
    const badLabel = tinyDataDir((d) => writeFileSync(join(d, 't10k-labels-idx1-ubyte'), idx([2], Uint8Array.from([1, 10]))));
    expect(() => load(badLabel)).toThrow(/t10k-labels-idx1-ubyte: label 10 at index 1 is not in 0\.\.9/);
  });
});
