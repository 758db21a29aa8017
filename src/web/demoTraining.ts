// The browser demo's training, without the page: the bundled 8×8 image subset, and a μP MLP trained
// side by side with a learned optimizer (one trial) and with Adam at a chosen learning rate, step by
// step, on the same seeded batches. Pure tfjs: the page runs it in a browser, the tests in Node
// (where it must give the same numbers).
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { adam } from '../optim/baselines/adam.js';
import { asTfjsOptimizer } from '../tfjs/adapter.js';
import { mupMlp, mupScaleFor } from '../tfjs/mup.js';
import type { LoadedLearnedOptimizer } from '../lopt/decode.js';
import { Rng } from '../random/rng.js';

/** An image subset as the demo ships it: 8-bit pixels in [0, 255] (value / 255 is the task's [0, 1] pixel), labels 0–9. */
export interface DemoImages {
  side: number;
  trainCount: number;
  testCount: number;
  /** (train + test) × side² bytes, train first. */
  pixels: Uint8Array;
  labels: Uint8Array;
}

const MAGIC = 'LOPTIMG1';
const HEADER_BYTES = MAGIC.length + 12;
const MAX_EXAMPLES = 100_000;

/** The file: "LOPTIMG1", then trainCount, testCount, side as little-endian u32, then the pixels, then the labels. */
export function encodeDemoImages(d: DemoImages): Uint8Array {
  const n = d.trainCount + d.testCount;
  const out = new Uint8Array(HEADER_BYTES + n * d.side * d.side + n);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, d.trainCount, true);
  view.setUint32(12, d.testCount, true);
  view.setUint32(16, d.side, true);
  out.set(d.pixels, HEADER_BYTES);
  out.set(d.labels, HEADER_BYTES + n * d.side * d.side);
  return out;
}

/** Decodes and checks the file (it is fetched, so untrusted): magic, counts, length, labels. */
export function decodeDemoImages(bytes: Uint8Array): DemoImages {
  const fail = (what: string): never => {
    throw new Error(`demo images: ${what}`);
  };
  if (bytes.length < HEADER_BYTES || new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC)
    fail(`not a demo image file (expected it to start with ${MAGIC})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [trainCount, testCount, side] = [view.getUint32(8, true), view.getUint32(12, true), view.getUint32(16, true)];
  const n = trainCount + testCount;
  if (trainCount < 1 || testCount < 1 || n > MAX_EXAMPLES || side < 1 || side > 64) fail(`bad header (train ${trainCount}, test ${testCount}, side ${side})`);
  if (bytes.length !== HEADER_BYTES + n * side * side + n) fail(`expected ${HEADER_BYTES + n * side * side + n} bytes, got ${bytes.length}`);
  const labels = bytes.slice(HEADER_BYTES + n * side * side);
  if (labels.some((l) => l > 9)) fail('a label is outside 0–9');
  return { side, trainCount, testCount, pixels: bytes.slice(HEADER_BYTES, HEADER_BYTES + n * side * side), labels };
}

export interface DemoConfig {
  width: number;
  depth: number;
  steps: number;
  batchSize: number;
  seed: number;
  /** Adam's learning rate (constant). */
  adamLr: number;
}

/** Checks a configuration from the page's inputs before any work. */
export function checkDemoConfig(c: DemoConfig): DemoConfig {
  const int = (name: keyof DemoConfig, lo: number, hi: number) => {
    const v = c[name];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${name} must be an integer in [${lo}, ${hi}]; got ${String(v)}`);
  };
  int('width', 8, 4096);
  int('depth', 1, 8);
  int('steps', 1, 100_000);
  int('batchSize', 1, 4096);
  int('seed', 0, 2 ** 31 - 1);
  if (!(Number.isFinite(c.adamLr) && c.adamLr > 0 && c.adamLr <= 10)) throw new Error(`adamLr must be a number in (0, 10]; got ${String(c.adamLr)}`);
  return c;
}

/** One step's training losses (before the update), per optimizer. */
export interface DemoStep {
  step: number;
  learned: number;
  adam: number;
}

export interface DemoRun {
  /** Trains both models on the next batch; null when the configured steps are done. */
  step(): Promise<DemoStep | null>;
  /** Seconds spent in each optimizer's training steps so far. */
  seconds(): { learned: number; adam: number };
  /** Accuracy of both models on the whole test subset. */
  testAccuracy(): { learned: number; adam: number };
  dispose(): void;
}

/** Images [count, side²] in [0, 1] and one-hot labels [count, 10] for the given example indices. */
function batchOf(data: DemoImages, indices: number[]): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const d = data.side * data.side;
  const x = new Float32Array(indices.length * d);
  const y = new Float32Array(indices.length * 10);
  indices.forEach((ex, i) => {
    for (let k = 0; k < d; k++) x[i * d + k] = data.pixels[ex * d + k]! / 255;
    y[i * 10 + data.labels[ex]!] = 1;
  });
  return { x: tf.tensor2d(x, [indices.length, d]), y: tf.tensor2d(y, [indices.length, 10]) };
}

/**
 * A side-by-side run: the same μP MLP (mupMlp, the same seed) trained by `learned` (one trial, no
 * learning rate) and by Adam, on the same batches drawn from a stream seeded by `config.seed`.
 */
export function startDemoRun(data: DemoImages, config: DemoConfig, learned: LoadedLearnedOptimizer, clock: () => number = () => performance.now()): DemoRun {
  const c = checkDemoConfig(config);
  const build = () => mupMlp({ inputs: data.side * data.side, hidden: new Array<number>(c.depth).fill(c.width), outputs: 10, seed: c.seed });
  const learnedModel: tfl.Sequential = build();
  const adamModel: tfl.Sequential = build();
  learnedModel.compile({ optimizer: learned.asTfjsOptimizer({ mupScale: mupScaleFor(learnedModel), totalSteps: c.steps }), loss: 'categoricalCrossentropy' });
  adamModel.compile({ optimizer: asTfjsOptimizer(adam({ learningRate: c.adamLr })), loss: 'categoricalCrossentropy' });
  const rng = Rng.from(c.seed).fork('demo-batches');
  const time = { learned: 0, adam: 0 };
  let t = 0;
  const trainOn = async (model: tfl.Sequential, x: tf.Tensor, y: tf.Tensor, which: 'learned' | 'adam'): Promise<number> => {
    const t0 = clock();
    const loss = (await model.trainOnBatch(x, y)) as number;
    time[which] += (clock() - t0) / 1000;
    return loss;
  };
  return {
    async step() {
      if (t >= c.steps) return null;
      const indices = Array.from({ length: c.batchSize }, () => rng.int(data.trainCount));
      const { x, y } = batchOf(data, indices);
      try {
        const learnedLoss = await trainOn(learnedModel, x, y, 'learned');
        const adamLoss = await trainOn(adamModel, x, y, 'adam');
        return { step: t++, learned: learnedLoss, adam: adamLoss };
      } finally {
        tf.dispose([x, y]);
      }
    },
    seconds: () => ({ ...time }),
    testAccuracy() {
      const indices = Array.from({ length: data.testCount }, (_, i) => data.trainCount + i);
      const { x, y } = batchOf(data, indices);
      const accuracy = (model: tfl.Sequential) =>
        tf.tidy(() => {
          const predicted = tf.argMax(model.predict(x) as tf.Tensor, 1);
          return tf.mean(tf.cast(tf.equal(predicted, tf.argMax(y, 1)), 'float32')).dataSync()[0]!;
        });
      const out = { learned: accuracy(learnedModel), adam: accuracy(adamModel) };
      tf.dispose([x, y]);
      return out;
    },
    dispose() {
      learnedModel.optimizer.dispose();
      adamModel.optimizer.dispose();
      learnedModel.dispose();
      adamModel.dispose();
    },
  };
}
