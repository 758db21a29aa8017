import { z } from 'zod';
import { Rng } from '../src/random/rng.js';
import { ACTIVATIONS, MAX_DEPTH, MAX_WIDTH, mlpName, validateMlpConfig, type MlpConfig } from './mlp.js';
import { taskFromName } from './registry.js';
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
]);
export type FamilySpec = z.input<typeof familySpecSchema>;

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
      const batch = Math.round(rng.logUniform(spec.batchSize.min, spec.batchSize.max + 0.999));
      const c: MlpConfig = {
        dataset: rng.choice(spec.datasets),
        imageSize: rng.choice(spec.imageSizes),
        width: rng.choice(spec.widths),
        depth: spec.depth.min + rng.int(spec.depth.max - spec.depth.min + 1),
        activation: rng.choice(spec.activations),
        batchSize: Math.min(Math.max(batch, spec.batchSize.min), spec.batchSize.max),
        parametrization: spec.parametrization,
      };
      return mlpName(validateMlpConfig(c));
    },
    build: taskFromName,
  };
}

/** Builds a family from its JSON spec (untrusted: validated, errors name the field path). */
export function familyFromSpec(spec: unknown): TaskFamily {
  const r = familySpecSchema.safeParse(spec);
  if (!r.success) throw new Error(`task family spec: ${issueText(r.error, spec)}`);
  const s = r.data;
  return s.type === 'fixed' ? fixedFamily(s.task) : mlpFamily(s);
}
