// Truncated PES (μLO's estimator) and truncated ES: K particles, each an antithetic pair of inner
// runs of one task, advanced `truncationLength` steps per outer step and restarted when their
// episode ends. Particles are grouped into fixed units (the unit of vectorization and of worker
// parallelism); a unit's task is drawn once from the family.
import { Rng } from '../random/rng.js';
import { esGradient, meanLoss, pesGradient, truncationDelta, type ParticleLosses } from './esGradient.js';
import { finiteMean, pairCurves, perturbedThetas, sampleNoise, type EstimatorOptions, type EstimatorState, type GradientEstimator } from './estimator.js';
import { printable } from '../text/printable.js';
import { episodeLength, initialParticles, restartedParticles, type ParticleState } from './particles.js';
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

/** The truncated estimators' worker state, decoded from its plain form (EstimatorState). */
interface Decoded {
  particles: ParticleState[];
  unitStates: (UnitState | null)[];
  /** PES's per-particle sums of the noise since each episode's start [K, thetaSize]; empty for ES. */
  accumulators: Float32Array;
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
  const accumulatorSize = o.kind === 'truncated-pes' ? K * o.thetaSize : 0;
  const firstTasks = [...new Set(units.map((_, u) => taskOf(u, 0)))];

  /** The plain form: particles and per-unit layouts as JSON, every float array by name. */
  const encode = (d: Decoded): EstimatorState => {
    const arrays: Record<string, Float32Array> = {};
    if (o.kind === 'truncated-pes') arrays['accumulators'] = d.accumulators;
    d.unitStates.forEach((s, u) => {
      if (s === null) return;
      s.params.forEach((a, i) => (arrays[`unit-${u}/param-${i}`] = a));
      s.optTensors.forEach((a, i) => (arrays[`unit-${u}/opt-${i}`] = a));
    });
    return {
      json: {
        particles: d.particles.map((p) => ({ ...p })),
        units: d.unitStates.map((s) => (s === null ? null : { params: s.params.length, opt: s.optTensors.length, numbers: s.optNumbers.slice() })),
      },
      arrays,
    };
  };

  /** The plain form read back, every field checked first (a resumed checkpoint is untrusted). */
  const decode = (state: EstimatorState): Decoded => {
    const json = state.json as { particles?: unknown; units?: unknown };
    const ps = json.particles;
    if (!Array.isArray(ps) || ps.length !== K) throw new Error(`${o.kind}: expected the state of ${K} particles, found ${describeList(ps)}`);
    ps.forEach((p, i) => checkParticle(p, i));
    const us = json.units;
    if (!Array.isArray(us) || us.length !== unitCount) throw new Error(`${o.kind}: expected the state of ${unitCount} units, found ${describeList(us)}`);
    const unitStates = us.map((entry, u): UnitState | null => {
      if (entry === null) return null;
      const e = entry as { params?: unknown; opt?: unknown; numbers?: unknown };
      const count = (x: unknown, what: string): number => {
        if (!Number.isSafeInteger(x) || (x as number) < 0 || (x as number) > MAX_UNIT_ARRAYS) {
          throw new Error(`${o.kind}: unit ${u}: ${what} must be a count in [0, ${MAX_UNIT_ARRAYS}], found ${printable(String(x), 40)}`);
        }
        return x as number;
      };
      const numbers = e.numbers;
      if (!Array.isArray(numbers) || numbers.length > MAX_UNIT_ARRAYS || !numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) {
        throw new Error(`${o.kind}: unit ${u}: numbers must be a list of at most ${MAX_UNIT_ARRAYS} finite numbers`);
      }
      const get = (name: string) => {
        const a = state.arrays[name];
        if (a === undefined) throw new Error(`${o.kind}: checkpoint is missing array '${name}'`);
        return a;
      };
      return {
        params: Array.from({ length: count(e.params, 'params') }, (_, i) => get(`unit-${u}/param-${i}`)),
        optTensors: Array.from({ length: count(e.opt, 'opt') }, (_, i) => get(`unit-${u}/opt-${i}`)),
        optNumbers: numbers.slice() as number[],
      };
    });
    const acc = state.arrays['accumulators'];
    if (o.kind === 'truncated-pes' && (acc === undefined || acc.length !== accumulatorSize)) {
      throw new Error(`${o.kind}: checkpoint accumulators do not match (${acc?.length ?? 'none'} values, expected ${accumulatorSize})`);
    }
    return { particles: (ps as ParticleState[]).map((p) => ({ ...p })), unitStates, accumulators: acc ?? new Float32Array(0) };
  };

  /** A particle as this estimator would have left it: its episode's length is the one its seeds draw. */
  const checkParticle = (p: unknown, i: number): void => {
    const q = p as Partial<ParticleState> | null;
    const fields = typeof q === 'object' && q !== null ? [q.episode, q.step, q.length] : [];
    if (fields.length !== 3 || !fields.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
      throw new Error(`${o.kind}: particle ${i}: episode, step and length must be non-negative integers`);
    }
    const { episode, step, length } = q as ParticleState;
    const expected = episodeLength(o.root, i, episode, o.lengths);
    if (length !== expected) throw new Error(`${o.kind}: particle ${i}: episode ${episode} is ${expected} steps long, the state says ${length}`);
    // step = length: the episode just ended; the particle restarts at its next truncation.
    if (step > length) throw new Error(`${o.kind}: particle ${i}: step ${step} is past the end of its ${length}-step episode`);
  };

  return {
    label:
      o.resampleEvery > 0
        ? `${o.kind} ${o.family.name} (task drawn per unit every ${o.resampleEvery} steps)`
        : `${o.kind} ${firstTasks.length === 1 ? firstTasks[0] : `${o.family.name} (${firstTasks.length} tasks)`}`,

    init: () =>
      encode({
        particles: initialParticles(o.root, K, o.lengths, o.initialOffset),
        unitStates: units.map(() => null),
        accumulators: new Float32Array(accumulatorSize),
      }),

    check: (state) => void decode(state),

    restart(state, outerStep) {
      // Episode numbers from the outer step, so the draws differ from the start's (a later clash
      // with a natural episode number would only repeat one draw).
      const { particles } = decode(state);
      return encode({
        particles: restartedParticles(
          o.root,
          particles.map((p) => ({ ...p, episode: outerStep })),
          o.lengths,
          o.initialOffset,
        ),
        unitStates: units.map(() => null),
        accumulators: new Float32Array(accumulatorSize),
      });
    },

    async estimate(theta, outerStep, state, run) {
      if (theta.length !== o.thetaSize) throw new Error(`${o.kind}: theta has ${theta.length} values, expected ${o.thetaSize}`);
      let { particles, unitStates } = decode(state);
      if (outerStep > 0 && draw(outerStep) !== draw(outerStep - 1)) {
        // A new task per unit: every particle starts a new episode, desynchronized as at the start.
        particles = restartedParticles(o.root, particles, o.lengths, o.initialOffset);
        unitStates = units.map(() => null);
      }
      const noise = sampleNoise(o.root, outerStep, K, o.thetaSize);
      const outputs: TruncationUnitOutput[] = await Promise.all(
        units.map((u, ui) =>
          run(
            {
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
            },
            { outerStep, unit: ui },
          ),
        ),
      );
      const losses: ParticleLosses[] = [];
      const raw: number[] = [];
      outputs.forEach((out, ui) => {
        pairCurves(out.losses, units[ui]!.k, o.truncationLength).forEach((curves, j) => losses.push({ ...curves, resetStep: out.resetStep[j]! }));
        raw.push(finiteMean(out.rawLosses));
      });
      // PES sums the noise into a copy: the state passed in stays as it was.
      const accumulators = o.kind === 'truncated-pes' ? state.arrays['accumulators']!.slice() : new Float32Array(0);
      const grad = o.kind === 'truncated-pes' ? pesGradient(losses, noise, accumulators, o.sigma) : esGradient(losses.map(truncationDelta), noise, o.sigma);
      return {
        result: { grad, metaLoss: meanLoss(losses), innerLoss: finiteMean(raw), innerSteps: 2 * K * o.truncationLength },
        state: encode({ particles: outputs.flatMap((out) => out.particleStates), unitStates: outputs.map((out) => out.state), accumulators }),
      };
    },
  };
}

/** Arrays or numbers one unit's saved state may hold (a task's tensors plus its optimizer's). */
const MAX_UNIT_ARRAYS = 10_000;

function describeList(x: unknown): string {
  return Array.isArray(x) ? `a list of ${x.length}` : x === undefined ? 'nothing' : `a ${typeof x}`;
}
