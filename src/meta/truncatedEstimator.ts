// Truncated PES (μLO's estimator) and truncated ES: K particles, each an antithetic pair of inner
// runs of one task, advanced `truncationLength` steps per outer step and restarted when their
// episode ends. Particles are grouped into fixed units (the unit of vectorization and of worker
// parallelism); a unit's task is drawn once from the family.
import { Rng } from '../random/rng.js';
import { esGradient, meanLoss, pesGradient, truncationDelta, type ParticleLosses } from './esGradient.js';
import {
  finiteMean,
  perturbedThetas,
  sampleNoise,
  type EstimateResult,
  type EstimatorOptions,
  type EstimatorSnapshot,
  type GradientEstimator,
} from './estimator.js';
import { initialParticles, restartedParticles, type ParticleState } from './particles.js';
import type { TruncationUnitOutput, UnitState } from './truncationUnit.js';

export interface TruncatedEstimatorOptions extends EstimatorOptions {
  kind: 'truncated-pes' | 'truncated-es';
  truncationLength: number;
  /** Particles start their first episode at a uniform step in [0, initialOffset). */
  initialOffset: number;
  /**
   * Every this many outer steps each unit draws a new task from the family and its particles start
   * over (desynchronized again); 0: a unit keeps the task drawn at the start.
   */
  resampleEvery: number;
  /** How an inner step's loss counts in the meta-loss (recipe.ts). */
  lossWeighting?: 'uniform' | 'linear';
}

export function truncatedEstimator(o: TruncatedEstimatorOptions): GradientEstimator {
  const K = o.particles;
  const unitCount = Math.ceil(K / o.particlesPerUnit);
  const draw = (outerStep: number) => (o.resampleEvery > 0 ? Math.floor(outerStep / o.resampleEvery) : 0);
  const taskOf = (u: number, outerStep: number) => o.family.sample(new Rng(o.root).fork(`unit-${u}`).fork(`draw-${draw(outerStep)}`));
  const units = Array.from({ length: unitCount }, (_, u) => {
    const from = u * o.particlesPerUnit;
    return { from, k: Math.min(o.particlesPerUnit, K - from) };
  });
  let particles: ParticleState[] = initialParticles(o.root, K, o.lengths, o.initialOffset);
  let unitStates: (UnitState | null)[] = units.map(() => null);
  const accumulators = new Float32Array(K * o.thetaSize);
  const firstTasks = [...new Set(units.map((_, u) => taskOf(u, 0)))];

  return {
    label:
      o.resampleEvery > 0
        ? `${o.kind} ${o.family.name} (task drawn per unit every ${o.resampleEvery} steps)`
        : `${o.kind} ${firstTasks.length === 1 ? firstTasks[0] : `${o.family.name} (${firstTasks.length} tasks)`}`,

    async estimate(theta, outerStep, run): Promise<EstimateResult> {
      if (theta.length !== o.thetaSize) throw new Error(`${o.kind}: theta has ${theta.length} values, expected ${o.thetaSize}`);
      if (outerStep > 0 && draw(outerStep) !== draw(outerStep - 1)) {
        // A new task per unit: every particle starts a new episode, desynchronized as at the start.
        particles = restartedParticles(o.root, particles, o.lengths, o.initialOffset);
        unitStates = units.map(() => null);
      }
      const noise = sampleNoise(o.root, outerStep, K, o.thetaSize);
      const outputs: TruncationUnitOutput[] = await Promise.all(
        units.map((u, ui) =>
          run({
            task: taskOf(ui, outerStep),
            lopt: o.lopt,
            root: o.root,
            particles: Array.from({ length: u.k }, (_, j) => u.from + j),
            particleStates: particles.slice(u.from, u.from + u.k),
            lengths: o.lengths,
            thetas: perturbedThetas(theta, noise, o.sigma, u.from, u.k),
            steps: o.truncationLength,
            start: o.kind === 'truncated-es' ? 'shared' : 'persistent',
            state: unitStates[ui]!,
            ...(o.lossWeighting === 'linear' ? { lossWeighting: 'linear' as const } : {}),
          }),
        ),
      );
      const losses: ParticleLosses[] = [];
      const raw: number[] = [];
      outputs.forEach((out, ui) => {
        const k = units[ui]!.k;
        const T = o.truncationLength;
        for (let j = 0; j < k; j++) {
          const positive = new Float64Array(T);
          const negative = new Float64Array(T);
          for (let t = 0; t < T; t++) {
            positive[t] = out.losses[t * 2 * k + 2 * j]!;
            negative[t] = out.losses[t * 2 * k + 2 * j + 1]!;
          }
          losses.push({ positive, negative, resetStep: out.resetStep[j]! });
        }
        raw.push(finiteMean(out.rawLosses));
      });
      // Commit the new state only once every unit has succeeded: a failed step changes nothing.
      particles = outputs.flatMap((out) => out.particleStates);
      unitStates = outputs.map((out) => out.state);
      const grad =
        o.kind === 'truncated-pes'
          ? pesGradient(losses, noise, accumulators, o.sigma)
          : esGradient(losses.map(truncationDelta), noise, o.sigma);
      return { grad, metaLoss: meanLoss(losses), innerLoss: finiteMean(raw), innerSteps: 2 * K * o.truncationLength };
    },

    snapshot(): EstimatorSnapshot {
      const arrays: Record<string, Float32Array> = {};
      if (o.kind === 'truncated-pes') arrays['accumulators'] = accumulators.slice();
      const numbers: (number[] | null)[] = [];
      unitStates.forEach((s, u) => {
        if (s === null) {
          numbers.push(null);
          return;
        }
        s.params.forEach((a, i) => (arrays[`unit-${u}/param-${i}`] = a));
        s.optTensors.forEach((a, i) => (arrays[`unit-${u}/opt-${i}`] = a));
        numbers.push(s.optNumbers);
      });
      return {
        json: {
          particles: particles.map((p) => ({ ...p })),
          units: numbers.map((n, u) =>
            n === null ? null : { params: unitStates[u]!.params.length, opt: unitStates[u]!.optTensors.length, numbers: n },
          ),
        },
        arrays,
      };
    },

    restart(outerStep) {
      // Episode numbers from the outer step, so the draws differ from the start's (a later clash
      // with a natural episode number would only repeat one draw).
      particles = restartedParticles(o.root, particles.map((p) => ({ ...p, episode: outerStep })), o.lengths, o.initialOffset);
      unitStates = units.map(() => null);
      accumulators.fill(0);
    },

    restore(snapshot) {
      const json = snapshot.json as { particles?: unknown; units?: unknown };
      const ps = json.particles;
      if (!Array.isArray(ps) || ps.length !== K || !ps.every(isParticle)) {
        throw new Error(`${o.kind}: checkpoint holds no valid state for ${K} particles`);
      }
      const us = json.units;
      if (!Array.isArray(us) || us.length !== unitCount) throw new Error(`${o.kind}: checkpoint holds state for a different number of units`);
      const restored = us.map((entry, u): UnitState | null => {
        if (entry === null) return null;
        const e = entry as { params: number; opt: number; numbers: number[] };
        const get = (name: string) => {
          const a = snapshot.arrays[name];
          if (a === undefined) throw new Error(`${o.kind}: checkpoint is missing array '${name}'`);
          return a;
        };
        return {
          params: Array.from({ length: e.params }, (_, i) => get(`unit-${u}/param-${i}`)),
          optTensors: Array.from({ length: e.opt }, (_, i) => get(`unit-${u}/opt-${i}`)),
          optNumbers: e.numbers.slice(),
        };
      });
      if (o.kind === 'truncated-pes') {
        const acc = snapshot.arrays['accumulators'];
        if (acc === undefined || acc.length !== accumulators.length) throw new Error(`${o.kind}: checkpoint accumulators do not match`);
        accumulators.set(acc);
      }
      particles = (ps as ParticleState[]).map((p) => ({ ...p }));
      unitStates = restored;
    },
  };
}

function isParticle(p: unknown): p is ParticleState {
  const q = p as ParticleState;
  return typeof q === 'object' && q !== null && [q.episode, q.step, q.length].every((x) => Number.isSafeInteger(x) && x >= 0);
}
