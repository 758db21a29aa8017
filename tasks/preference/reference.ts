// The reference (SFT) model of a preference task: the causal transformer of the task's shape fitted
// to Moby Dick next-character prediction, trained once per (shape, seed, SFT settings, corpus,
// backend) and cached under a content hash — in memory per process and on disk — not re-trained
// per run. DPO, SimPO and MIPO all start their policy at this model (the usual SFT → preference
// pipeline); DPO and MIPO also score responses with it.
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { adam, muadam } from '../../src/optim/baselines/adam.js';
import type { Params } from '../../src/tree/params.js';
import { disposeState } from '../../src/tree/stateTree.js';
import { Rng } from '../../src/random/rng.js';
import { loadText, type TextDataset } from '../data/text.js';
import { lossAndGrads } from '../lossAndGrads.js';
import { transformerTask } from '../transformer.js';
import { modelConfigOf, type PreferenceConfig } from './config.js';
import { decodeReferenceFile, diskCacheUsable, encodeReferenceFile, maxReferenceFileBytes, REFERENCE_FILE_FORMAT } from './referenceFile.js';

/** SFT: Adam (μAdam with the model's mupScale under μP) at a constant learning rate. */
export interface SftSettings {
  steps: number;
  batchSize: number;
  learningRate: number;
}

/**
 * The pinned SFT recipe, chosen by measurement on w32-d1-t32 (wasm, 2 cores shared with other
 * work): 300 steps of 32 windows take 15–16 s and end at a training loss of 2.23 (μP, lr 0.2) and
 * 2.17 (SP, lr 0.03), held-out 2.24 and 2.18, against ln V = 4.49 and a unigram entropy of ~3.07.
 * The learning rates sit in the flat part of a sweep at 300 steps (μP: 0.1–0.3 within 0.02, 0.03
 * → 2.38; SP: 0.03–0.05 within 0.07, 0.1 stalls at 2.86, 0.003 → 2.37).
 */
export const SFT_STEPS = 300;
export const SFT_BATCH = 32;
export const SFT_LEARNING_RATE = { mup: 0.2, sp: 0.03 } as const;

export function defaultSft(cfg: PreferenceConfig): SftSettings {
  return { steps: SFT_STEPS, batchSize: SFT_BATCH, learningRate: SFT_LEARNING_RATE[cfg.parametrization] };
}

export type ReferenceSource = 'memory' | 'disk' | 'trained';

export interface Reference {
  /** One member's weights, [1, ...shape]; shared and kept: never dispose them. */
  params: Params;
  key: string;
  source: ReferenceSource;
  /** The disk cache file (it may be absent when the cache folder cannot be written). */
  file: string;
  /** Why an existing cache file was not used (it was re-trained and overwritten). */
  ignored?: string;
  /** When trained now: the mean next-character loss of the last SFT steps (nats). */
  sftLoss?: number;
}

const held = new Map<string, Params>();

/** Caches a reference for the process; tf.keep, so a caller's tf.tidy (around init or a batch) cannot dispose it. */
function hold(key: string, params: Params): void {
  for (const t of Object.values(params)) tf.keep(t);
  held.set(key, params);
}

function checkRequest(seed: number, sft: SftSettings): void {
  if (!Number.isSafeInteger(seed)) throw new Error(`preference reference: seed must be an integer; got ${String(seed)}`);
  const { steps, batchSize, learningRate } = sft;
  if (!Number.isSafeInteger(steps) || steps < 1) throw new Error(`preference reference: SFT steps must be a positive integer; got ${String(steps)}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new Error(`preference reference: SFT batchSize must be a positive integer; got ${String(batchSize)}`);
  if (!(learningRate > 0 && Number.isFinite(learningRate)))
    throw new Error(`preference reference: SFT learningRate must be positive; got ${String(learningRate)}`);
}
const corpusDigests = new WeakMap<TextDataset, string>();

function corpusDigest(ds: TextDataset): string {
  let d = corpusDigests.get(ds);
  if (d === undefined) {
    const h = createHash('sha256').update(JSON.stringify({ name: ds.name, vocab: ds.vocab }));
    h.update(new Uint8Array(ds.codes.buffer, ds.codes.byteOffset, ds.codes.byteLength));
    d = h.digest('hex');
    corpusDigests.set(ds, d);
  }
  return d;
}

/** JSON with object keys sorted at every level, so equal contents give equal text. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * sha256 of everything that determines the reference's weights: the model (width, depth, heads,
 * seqLen, parametrization — not the preference loss or batch, so the three losses share one
 * reference), the seed, the SFT recipe, the corpus's digest, the file format and the backend.
 */
export function referenceKey(cfg: PreferenceConfig, seed: number, sft: SftSettings = defaultSft(cfg)): string {
  const { width, depth, heads, seqLen, parametrization } = modelConfigOf(cfg);
  const content = {
    format: REFERENCE_FILE_FORMAT,
    model: { kind: 'causal-char-transformer', width, depth, heads, seqLen, parametrization },
    seed,
    sft: { ...sft, optimizer: parametrization === 'mup' ? 'muadam' : 'adam', split: 'train' },
    corpus: corpusDigest(loadText('moby-dick')),
    backend: tf.getBackend(),
  };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** $LOPT_CACHE_DIR, else $XDG_CACHE_HOME/lopt, else ~/.cache/lopt; references live in its references/ folder. */
export function referenceCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env['LOPT_CACHE_DIR'];
  const xdg = env['XDG_CACHE_HOME'];
  const root = own !== undefined && own !== '' ? own : xdg !== undefined && xdg !== '' ? join(xdg, 'lopt') : join(homedir(), '.cache', 'lopt');
  return join(root, 'references');
}

/** Steps whose training losses are averaged into Reference.sftLoss. */
const SFT_LOSS_TAIL = 10;

/** Fits the model to next-character prediction; returns its weights [1, ...] and the mean of the last training losses. */
function trainReference(cfg: PreferenceConfig, seed: number, sft: SftSettings): { params: Params; loss: number } {
  const model = transformerTask({ ...modelConfigOf(cfg), batchSize: sft.batchSize });
  const mup = cfg.parametrization === 'mup';
  const opt = mup ? muadam({ learningRate: sft.learningRate, mupScale: { ...model.mupScale } }) : adam({ learningRate: sft.learningRate });
  let params = model.init([seed]);
  let state = opt.init(params);
  // Its own data stream: a member whose pair stream has the same seed must not see the same windows.
  const stream = model.batches('train', [Rng.from(seed).fork('reference-sft').seedInt()]);
  let tail = 0;
  for (let k = 0; k < sft.steps; k++) {
    const batch = stream.next();
    const { losses, grads } = lossAndGrads(model, params, batch);
    if (k >= sft.steps - SFT_LOSS_TAIL) tail += losses.dataSync()[0]!;
    ({ params, state } = opt.step(params, grads, state));
    tf.dispose([losses, Object.values(grads), Object.values(batch)]);
  }
  disposeState(state.inner);
  return { params, loss: tail / Math.min(SFT_LOSS_TAIL, sft.steps) };
}

function readBounded(file: string, limit: number): Buffer | string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return 'absent';
  }
  try {
    const size = fstatSync(fd).size;
    if (size > limit) return `file is larger (${size} bytes) than a reference of this shape can be`;
    const buf = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === size ? buf : 'file shrank while read';
  } catch (e) {
    return `unreadable (${(e as Error).message})`;
  } finally {
    closeSync(fd);
  }
}

let tempCounter = 0;

/** Writes via a temp file and a rename, so a reader sees the old file or the whole new one; false when it could not. */
function writeAtomically(file: string, dir: string, bytes: Buffer): boolean {
  const temp = `${file}.${process.pid}.${tempCounter++}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(temp, bytes, { flag: 'wx' });
    renameSync(temp, file);
    return true;
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // nothing was written
    }
    return false;
  }
}

/**
 * The reference model for `seed` (a preference task uses seed 0: one reference per model shape;
 * any seed may be asked for): from this process's memory, else from the disk cache when the file
 * there checks out in every respect, else trained now and written to the cache atomically. A
 * cache that cannot be written is not an error (the weights stay in memory).
 */
export function referenceModel(cfg: PreferenceConfig, seed: number, sft: SftSettings = defaultSft(cfg)): Reference {
  checkRequest(seed, sft);
  const key = referenceKey(cfg, seed, sft);
  const dir = referenceCacheDir();
  const file = join(dir, `${key}.bin`);
  const inMemory = held.get(key);
  if (inMemory !== undefined) return { params: inMemory, key, source: 'memory', file };
  const shapes = transformerTask(modelConfigOf(cfg)).shapes;
  const expected = Object.entries(shapes).map(([name, shape]) => ({ name, shape }));
  let ignored: string | undefined;
  if (diskCacheUsable()) {
    const bytes = readBounded(file, maxReferenceFileBytes(expected));
    const decoded = typeof bytes === 'string' ? { refused: bytes } : decodeReferenceFile(bytes, key, expected);
    if ('tensors' in decoded) {
      const params: Params = {};
      for (const t of decoded.tensors) params[t.name] = tf.tensor(t.values, [1, ...t.shape]);
      hold(key, params);
      return { params, key, source: 'disk', file };
    }
    if (decoded.refused !== 'absent') ignored = decoded.refused;
  }
  const { params, loss } = trainReference(cfg, seed, sft);
  hold(key, params);
  if (diskCacheUsable()) {
    const tensors = expected.map(({ name, shape }) => ({ name, shape, values: params[name]!.dataSync() as Float32Array }));
    writeAtomically(file, dir, encodeReferenceFile(key, tensors));
  }
  return { params, key, source: 'trained', file, sftLoss: loss, ...(ignored !== undefined ? { ignored } : {}) };
}

/** Drops (and disposes) the references held in memory, so the next call reads the disk cache again; for tests. */
export function forgetReferences(): void {
  for (const params of held.values()) tf.dispose(Object.values(params));
  held.clear();
}
