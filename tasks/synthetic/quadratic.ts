import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../../src/tree/params.js';
import type { Rng } from '../../src/random/rng.js';
import type { Batch, Split, Task } from '../types.js';
import { relativeNormalizer } from './normalizers.js';
import { fillNormal, initRng, instanceRng, lazy, lazyConstant, perMember, stepBatches } from './seeded.js';
import { parseCanonical, requireFields, requireBoolean, requireInt, requireNumber, requireSeeds } from './validation.js';

const TASK = 'quadratic';

export interface QuadraticConfig {
  /** Dimension d of w. */
  dim: number;
  /** Condition number κ ≥ 1: eigenvalues are log-spaced from 1 to κ. */
  condition: number;
  /** Q a random rotation (default) or the identity (`false`: a diagonal quadratic). */
  rotated?: boolean;
}

/** The fixed problem, as float32 (exactly what the loss uses). */
export interface QuadraticInstance {
  /** λ_i = κ^(i/(d−1)), i = 0..d−1 (λ = [1] when d = 1). */
  lambda: Float32Array;
  /** Q row-major [d, d] (Q[i·d + j] = Q_ij), Haar-random orthogonal; null when not rotated. */
  rotation: Float32Array | null;
  /** c ~ N(0, 1), so the minimum is 0 at w* = Qᵀc. */
  target: Float32Array;
}

export interface QuadraticTask extends Task {
  instance(): QuadraticInstance;
}

function checked(config: QuadraticConfig): Required<QuadraticConfig> {
  requireFields(TASK, config, ['dim', 'condition', 'rotated']);
  return {
    dim: requireInt(TASK, 'dim', config.dim, 1),
    condition: requireNumber(TASK, 'condition', config.condition, 1),
    rotated: config.rotated === undefined ? true : requireBoolean(TASK, 'rotated', config.rotated),
  };
}

/** `quadratic-d<dim>-k<condition>`, with `-diag` when not rotated. */
export function quadraticName(config: QuadraticConfig): string {
  const c = checked(config);
  return `quadratic-d${c.dim}-k${c.condition}${c.rotated ? '' : '-diag'}`;
}

export function parseQuadraticName(name: string): Required<QuadraticConfig> {
  return parseCanonical(
    name,
    TASK,
    'quadratic-d<dim>-k<condition>[-diag], e.g. quadratic-d100-k1000 (dim an integer >= 1, condition >= 1)',
    /^quadratic-d(\d+)-k([0-9.e+]+)(-diag)?$/,
    ([d, k, diag]) => checked({ dim: Number(d), condition: Number(k), rotated: diag === '' }),
    quadraticName,
  );
}

/**
 * Haar-random orthogonal matrix: modified Gram–Schmidt on a Gaussian matrix's columns (one pass
 * suffices: its orthogonality error is ~ε·cond, and Gaussian matrices are well conditioned).
 * O(d³): about 2 s at d = 1000 in Node, paid once per task object on first use.
 */
function randomRotation(d: number, rng: Rng): Float64Array {
  const cols: Float64Array[] = [];
  for (let j = 0; j < d; j++) {
    const v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = rng.normal();
    for (const u of cols) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += u[i]! * v[i]!;
      for (let i = 0; i < d; i++) v[i] = v[i]! - dot * u[i]!;
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < d; i++) v[i] = v[i]! / norm;
    cols.push(v);
  }
  const q = new Float64Array(d * d);
  cols.forEach((col, j) => col.forEach((x, i) => (q[i * d + j] = x)));
  return q;
}

/**
 * Ill-conditioned quadratic f(w) = ½ Σ_i λ_i (Qw − c)_i², members w [P, d] with w0 ~ N(0, I).
 * Normalizer: f / E[f(w0)] with E[f(w0)] = ½ Σ λ_i (1 + c_i²), clipped to [0, 1.5], NaN/Inf → 1.5.
 */
export function quadraticTask(config: QuadraticConfig): QuadraticTask {
  const cfg = checked(config);
  const name = quadraticName(cfg);
  const d = cfg.dim;

  const instance = lazy((): QuadraticInstance => {
    const rng = instanceRng(name);
    const lambda = new Float32Array(d);
    for (let i = 0; i < d; i++) lambda[i] = d === 1 ? 1 : Math.pow(cfg.condition, i / (d - 1));
    const target = new Float32Array(d);
    fillNormal(rng.fork('target'), target);
    const rotation = cfg.rotated ? Float32Array.from(randomRotation(d, rng.fork('rotation'))) : null;
    return { lambda, rotation, target };
  });
  const lambdaT = lazyConstant(() => tf.tensor1d(instance().lambda));
  const targetT = lazyConstant(() => tf.tensor1d(instance().target));
  // Qᵀ [d, d], so the population product w·Qᵀ = (Qw)ᵀ is an untransposed matMul.
  const rotationT = lazyConstant(() => tf.transpose(tf.tensor2d(instance().rotation!, [d, d])));
  const initialLoss = lazy(() => {
    const { lambda, target } = instance();
    let s = 0;
    for (let i = 0; i < d; i++) s += lambda[i]! * (1 + target[i]! * target[i]!);
    return 0.5 * s;
  });

  return {
    meta: { name, family: TASK, parametrization: 'sp', dataset: null, width: d, depth: null, batchSize: 1, paramCount: d },
    shapes: { w: [d] },
    mupScale: { w: 1 },
    instance,
    init(seeds: readonly number[]): Params {
      requireSeeds(name, seeds);
      const values = perMember(seeds.map(initRng), d, (rng, out) => fillNormal(rng, out));
      return { w: tf.tensor2d(values, [seeds.length, d]) };
    },
    loss(params: Params, _batch: Batch): tf.Tensor1D {
      const w = params.w;
      if (w === undefined) throw new Error(`${name}: params.w is missing`);
      return tf.tidy(() => {
        const qw = cfg.rotated ? tf.matMul(w, rotationT()) : w;
        const r = tf.sub(qw, targetT());
        return tf.mul(0.5, tf.sum(tf.mul(tf.square(r), lambdaT()), 1)) as tf.Tensor1D;
      });
    },
    batches(_split: Split, seeds: readonly number[]) {
      requireSeeds(name, seeds);
      return stepBatches(seeds.length);
    },
    normalizeLoss: relativeNormalizer(initialLoss),
  };
}
