import { z } from 'zod';
import { Rng } from '../src/random/rng.js';
import { ACTIVATIONS, MAX_DEPTH, MAX_WIDTH, mlpName, validateMlpConfig, type MlpConfig } from './mlp.js';
import { taskFromName } from './registry.js';
import { mlmName, validateMlmConfig, type MlmConfig } from './mlm/mlmTask.js';
import { PREFERENCE_LOSSES, preferenceName, validatePreferenceConfig, type PreferenceConfig } from './preference/config.js';
import type { Task } from './types.js';
import { issueText } from '../src/schema/parseOptions.js';

/**
 * learned_optimization's TaskFamily: `sample(rng)` draws a task configuration — here its canonical
 * name, which is also what suites, recipes and the CLI use — and `build(name)` makes the task.
 */
export interface TaskFamily {
  readonly name: string;
  sample(rng: Rng): string;
  build(taskName: string): Task;
}

const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi);
const range = (lo: number, hi: number) =>
  z.strictObject({ min: int(lo, hi), max: int(lo, hi) }).refine((r) => r.min <= r.max, { error: 'min must not exceed max' });

/** The JSON form of a family, as recipes write it. */
export const familySpecSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('fixed'), task: z.string().min(1) }),
  z.strictObject({
    type: z.literal('mlp'),
    datasets: z
      .array(z.enum(['mnist', 'fashion-mnist']))
      .min(1)
      .default(['mnist']),
    imageSizes: z
      .array(z.union([z.literal(8), z.literal(16), z.literal(28)]))
      .min(1)
      .default([8]),
    widths: z.array(int(1, MAX_WIDTH)).min(1),
    /** Uniform integer in [min, max]. */
    depth: range(1, MAX_DEPTH).default({ min: 1, max: 1 }),
    activations: z.array(z.enum(ACTIVATIONS)).min(1).default(['relu']),
    /** Log-uniform integer in [min, max]. */
    batchSize: range(1, 1 << 16).default({ min: 128, max: 128 }),
    parametrization: z.enum(['mup', 'sp']).default('mup'),
  }),
  z.strictObject({
    type: z.literal('mlm'),
    widths: z.array(int(1, 8192)).min(1),
    /** Uniform integer in [min, max]. */
    depth: range(1, 64).default({ min: 1, max: 1 }),
    /** Width of one attention head: heads = width / headWidth (every width must be a multiple). */
    headWidth: int(1, 8192).default(8),
    seqLens: z.array(int(1, 4096)).min(1).default([32]),
    /** Log-uniform integer in [min, max]. */
    batchSize: range(1, 1 << 16).default({ min: 16, max: 16 }),
    positions: z
      .array(z.enum(['nezha', 'abs']))
      .min(1)
      .default(['nezha']),
    parametrization: z.enum(['mup', 'sp']).default('mup'),
  }),
  z.strictObject({
    type: z.literal('preference'),
    losses: z
      .array(z.enum(PREFERENCE_LOSSES))
      .min(1)
      .default([...PREFERENCE_LOSSES]),
    widths: z.array(int(1, 8192)).min(1),
    depth: range(1, 64).default({ min: 1, max: 1 }),
    seqLens: z.array(int(4, 4096)).min(1).default([32]),
    batchSize: range(1, 1 << 16).default({ min: 16, max: 16 }),
    parametrization: z.enum(['mup', 'sp']).default('mup'),
  }),
]);
export type FamilySpec = z.input<typeof familySpecSchema>;

/** Log-uniform integer in [min, max]. */
const logUniformBatch = (rng: Rng, r: { min: number; max: number }): number =>
  Math.min(Math.max(Math.round(rng.logUniform(r.min, r.max + 0.999)), r.min), r.max);

/** A family of one task. */
export function fixedFamily(taskName: string): TaskFamily {
  taskFromName(taskName); // validate up front
  return { name: `fixed(${taskName})`, sample: () => taskName, build: taskFromName };
}

type MlpFamilySpec = Extract<z.output<typeof familySpecSchema>, { type: 'mlp' }>;

/** Image MLPs over widths, depths, activations, datasets, image sizes and batch sizes. */
export function mlpFamily(spec: Omit<MlpFamilySpec, 'type'>): TaskFamily {
  return {
    name: `mlp(w∈{${spec.widths.join(',')}}, d∈[${spec.depth.min},${spec.depth.max}], ${spec.parametrization})`,
    sample(rng) {
      const batchSize = logUniformBatch(rng, spec.batchSize);
      const c: MlpConfig = {
        dataset: rng.choice(spec.datasets),
        imageSize: rng.choice(spec.imageSizes),
        width: rng.choice(spec.widths),
        depth: spec.depth.min + rng.int(spec.depth.max - spec.depth.min + 1),
        activation: rng.choice(spec.activations),
        batchSize,
        parametrization: spec.parametrization,
      };
      return mlpName(validateMlpConfig(c));
    },
    build: taskFromName,
  };
}

type MlmFamilySpec = Extract<z.output<typeof familySpecSchema>, { type: 'mlm' }>;
type PreferenceFamilySpec = Extract<z.output<typeof familySpecSchema>, { type: 'preference' }>;

/** NEZHA / absolute-position masked LMs over widths, depths, sequence lengths and batch sizes. */
export function mlmFamily(spec: Omit<MlmFamilySpec, 'type'>): TaskFamily {
  const bad = spec.widths.find((w) => w % spec.headWidth !== 0);
  if (bad !== undefined) throw new Error(`task family spec: widths: ${bad} is not a multiple of headWidth ${spec.headWidth}`);
  return {
    name: `mlm(w∈{${spec.widths.join(',')}}, d∈[${spec.depth.min},${spec.depth.max}], ${spec.positions.join('|')}, ${spec.parametrization})`,
    sample(rng) {
      const width = rng.choice(spec.widths);
      const c: MlmConfig = {
        width,
        depth: spec.depth.min + rng.int(spec.depth.max - spec.depth.min + 1),
        heads: width / spec.headWidth,
        seqLen: rng.choice(spec.seqLens),
        batchSize: logUniformBatch(rng, spec.batchSize),
        positions: rng.choice(spec.positions),
        parametrization: spec.parametrization,
      };
      return mlmName(validateMlmConfig(c));
    },
    build: taskFromName,
  };
}

/** DPO / SimPO / MIPO preference tasks over losses, widths, depths, sequence lengths and batch sizes. */
export function preferenceFamily(spec: Omit<PreferenceFamilySpec, 'type'>): TaskFamily {
  return {
    name: `preference(${spec.losses.join('|')}, w∈{${spec.widths.join(',')}}, d∈[${spec.depth.min},${spec.depth.max}], ${spec.parametrization})`,
    sample(rng) {
      const c: PreferenceConfig = {
        loss: rng.choice(spec.losses),
        width: rng.choice(spec.widths),
        depth: spec.depth.min + rng.int(spec.depth.max - spec.depth.min + 1),
        seqLen: rng.choice(spec.seqLens),
        batchSize: logUniformBatch(rng, spec.batchSize),
        parametrization: spec.parametrization,
      };
      return preferenceName(validatePreferenceConfig(c));
    },
    build: taskFromName,
  };
}

/** Builds a family from its JSON spec (untrusted: validated, errors name the field path). */
export function familyFromSpec(spec: unknown): TaskFamily {
  const r = familySpecSchema.safeParse(spec);
  if (!r.success) throw new Error(`task family spec: ${issueText(r.error, spec)}`);
  const s = r.data;
  switch (s.type) {
    case 'fixed':
      return fixedFamily(s.task);
    case 'mlp':
      return mlpFamily(s);
    case 'mlm':
      return mlmFamily(s);
    case 'preference':
      return preferenceFamily(s);
  }
}
