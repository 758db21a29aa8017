// The shape of a truncation unit's input, as a zod schema: what a worker checks before running a
// unit that came from elsewhere (a queue). The unit itself checks what needs the task and the
// learned optimizer (array sizes, the task's name, the optimizer's config).
import { z } from 'zod';
import { SPLITS } from '../../tasks/types.js';
import type { TruncationUnitInput } from './truncationUnit.js';

const count = (max = Number.MAX_SAFE_INTEGER) => z.number().int().min(0).max(max);
const f32 = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'must be a float32 array' });

const particleState = z.strictObject({ episode: count(), step: count(), length: count().min(1) });

const episodeLength = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('fixed'), steps: count().min(1) }),
  z.strictObject({ kind: z.literal('log-uniform'), min: count().min(1), max: count().min(1) }),
]);

const unitState = z.strictObject({
  params: z.array(f32).max(10_000),
  optTensors: z.array(f32).max(10_000),
  optNumbers: z.array(z.number()).max(10_000),
});

export const truncationUnitInputSchema = z
  .strictObject({
    task: z.string().min(1).max(300),
    lopt: z.strictObject({
      arch: z.string().min(1).max(100),
      config: z.record(z.string().max(100), z.union([z.number(), z.string().max(1000), z.boolean()])),
    }),
    root: z.string().min(1).max(300),
    particles: z.array(count()).min(1).max(4096),
    particleStates: z.array(particleState).max(4096),
    lengths: episodeLength,
    thetas: f32,
    steps: count(1_000_000).min(1),
    start: z.enum(['persistent', 'shared']),
    state: unitState.nullable(),
    finalLoss: z.strictObject({ batches: count(100_000).min(1), split: z.enum(SPLITS) }).optional(),
    lossWeighting: z.literal('linear').optional(),
  })
  .refine((u) => u.particles.length === u.particleStates.length, { error: 'particles and particleStates differ in length' });

// The schema and the interface the unit is written against must describe the same thing.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShape: Same<z.output<typeof truncationUnitInputSchema>, TruncationUnitInput> = true;
void sameShape;
