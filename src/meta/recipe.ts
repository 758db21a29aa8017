// Meta-training recipes (meta-train/*.json): everything a run needs, validated before any work.
// A recipe file is untrusted input: errors name the field path, the bad value and what is allowed.
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { z } from 'zod';
import { createLearnedOptimizer } from '../lopt/registry.js';
import { LEARNED_OPTIMIZER_ARCHS } from '../lopt/types.js';
import { familyFromSpec, familySpecSchema } from '../../tasks/families.js';
import { taskFromName } from '../../tasks/registry.js';
import { printable } from '../text/printable.js';
import { plainText } from '../text/plainText.js';
import { issueText } from '../schema/parseOptions.js';
import { readInputText } from '../schema/inputFile.js';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number({ error: `must be an integer in [${min}, ${max}]` })
    .int({ error: `must be an integer in [${min}, ${max}]` })
    .min(min, { error: `must be an integer in [${min}, ${max}]` })
    .max(max, { error: `must be an integer in [${min}, ${max}]` });
const positive = () => z.number({ error: 'must be a finite number > 0' }).positive({ error: 'must be a finite number > 0' }).finite();
const nonNegative = () => z.number({ error: 'must be a finite number >= 0' }).min(0, { error: 'must be a finite number >= 0' }).finite();

const episodeLength = z.union(
  [z.strictObject({ steps: int(1) }), z.strictObject({ min: int(1), max: int(1) }).refine((r) => r.min <= r.max, { error: 'min must not exceed max' })],
  { error: 'must be { "steps": N } or { "min": A, "max": B } (log-uniform)' },
);

const common = {
  family: familySpecSchema,
  /** Antithetic pairs per outer step (K). */
  particles: int(1, 4096),
  /** Particles advanced together in one op stream (and one worker job). Fixed by the recipe, so the meta-gradient does not depend on the worker count. */
  particlesPerUnit: int(1, 4096).default(4),
  sigma: positive().default(0.01),
  episodeLength: episodeLength.default({ min: 100, max: 1000 }),
};

const truncated = {
  ...common,
  truncationLength: int(1, 1_000_000).default(50),
  /** Particles start at a uniform step in [0, initialOffset) of their first episode. */
  initialOffset: int(0).default(0),
  /** Every N outer steps each unit draws a new task from the family (0: never; the first draw is kept). */
  resampleEvery: int(0).default(0),
  /**
   * How each inner step's loss counts in the meta-loss: 'uniform' (the default: the episode's
   * mean loss) or 'linear' (step t of an episode of length L weighs 2(t+1)/L: the end of
   * training counts most, the mean weight is ~1). No default written, so older recipes keep their hash.
   */
  lossWeighting: z.enum(['uniform', 'linear']).optional(),
};

const estimatorSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('truncated-pes'), ...truncated }),
  z.strictObject({ type: z.literal('truncated-es'), ...truncated }),
  z.strictObject({
    type: z.literal('full-es'),
    ...common,
    metaLoss: z.enum(['mean', 'last', 'last-fresh']).default('mean'),
    freshBatches: int(1, 1000).default(4),
    freshSplit: z.enum(['train', 'inner-valid', 'outer-valid', 'test']).default('train'),
    signScale: positive().optional(),
  }),
]);

export const recipeSchema = z
  .strictObject({
    name: plainText(200).min(1).optional(),
    description: plainText(10_000).optional(),
    seed: int(0).default(0),
    learnedOptimizer: z.strictObject({
      arch: z.enum(LEARNED_OPTIMIZER_ARCHS),
      config: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).default({}),
      /** Seed of initTheta (defaults to the recipe seed). */
      initSeed: int(0).optional(),
      /**
       * Start with the per-parameter MLP's output layer (mlp/w2, mlp/b2; VeLO's banks ff_mod_stack/~/w2, b2) at zero: the first
       * optimizer makes no step, so long episodes begin at a finite loss rather than diverging to
       * the normalizer's cap, where antithetic pairs tie and PES has no signal.
       */
      zeroOutput: z.boolean().optional(),
    }),
    /** One or more estimators; their meta-gradients are averaged each outer step (μLO_M: one per width). */
    estimators: z.array(estimatorSchema).min(1, { error: 'must list at least one estimator' }),
    outerSteps: int(1, 10_000_000),
    /** AdamW with linear warmup then cosine decay; the meta-gradient is clipped to this global norm first. */
    outer: z
      .strictObject({
        peakLr: positive().default(3e-3),
        endLr: nonNegative().default(1e-3),
        /** Default: min(100, outerSteps / 10). */
        warmupSteps: int(0).optional(),
        weightDecay: nonNegative().default(1e-4),
        clipGlobalNorm: positive().default(1),
        /** Clip each meta-gradient element to ± this first (VeLO's outer Adam); absent: no value clipping. */
        clipValue: positive().optional(),
      })
      .default({ peakLr: 3e-3, endLr: 1e-3, weightDecay: 1e-4, clipGlobalNorm: 1 }),
    checkpoint: z
      .strictObject({
        everySteps: int(1).default(50),
        everyMinutes: positive().default(10),
        keep: int(1, 1000).default(3),
      })
      .default({ everySteps: 50, everyMinutes: 10, keep: 3 }),
    /** Plain-log cadence (outer steps between lines). */
    logEvery: int(1).default(10),
    /** Held-out comparison printed at the end of a run (`npm start`): the learned optimizer against Adam. */
    evaluation: z
      .strictObject({
        task: z.string().min(1),
        steps: int(1, 1_000_000),
        /** Adam runs at each; the best (lowest training loss over the last 10% of steps) is the reference. */
        adamLrs: z.array(positive()).min(1).default([1e-3, 3e-3, 1e-2, 3e-2]),
        seed: int(0).default(0),
      })
      .optional(),
  })
  .transform((r) => ({
    ...r,
    outer: { ...r.outer, warmupSteps: r.outer.warmupSteps ?? Math.min(100, Math.ceil(r.outerSteps / 10)) },
  }));

export type Recipe = z.output<typeof recipeSchema>;
export type EstimatorSpec = Recipe['estimators'][number];

/** Validates a parsed recipe; `source` names it in errors. Semantic checks (task names, architecture config) included. */
export function parseRecipe(value: unknown, source: string): Recipe {
  const r = recipeSchema.safeParse(value);
  if (!r.success) throw new Error(`recipe ${printable(source, 200)}: ${issueText(r.error, value)}`);
  const recipe = r.data;
  const fail = (path: string, message: string): never => {
    throw new Error(`recipe ${source}: ${path}: ${message}`);
  };
  try {
    createLearnedOptimizer(recipe.learnedOptimizer.arch, recipe.learnedOptimizer.config);
  } catch (e) {
    fail('learnedOptimizer.config', (e as Error).message);
  }
  recipe.estimators.forEach((e, i) => {
    try {
      familyFromSpec(e.family);
    } catch (err) {
      fail(`estimators.${i}.family`, (err as Error).message);
    }
    if (e.particlesPerUnit > e.particles) {
      fail(`estimators.${i}.particlesPerUnit`, `must not exceed particles (${e.particles}); found ${e.particlesPerUnit}`);
    }
  });
  if (recipe.outer.warmupSteps > recipe.outerSteps) {
    fail('outer.warmupSteps', `must not exceed outerSteps (${recipe.outerSteps}); found ${recipe.outer.warmupSteps}`);
  }
  if (recipe.evaluation) {
    try {
      taskFromName(recipe.evaluation.task);
    } catch (e) {
      fail('evaluation.task', (e as Error).message);
    }
  }
  return recipe;
}

/** Recipes are a few KB; the cap keeps a wrong path (a device, a data file) from being read at all. */
const MAX_RECIPE_BYTES = 1 << 20;

/** Reads and validates a recipe file (untrusted input: a regular file of at most 1 MiB). */
export async function loadRecipe(path: string): Promise<{ recipe: Recipe; text: string }> {
  const text = readInputText(path, 'recipe', MAX_RECIPE_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`recipe ${path}: not valid JSON (${(e as Error).message})`);
  }
  const recipe = parseRecipe(json, path);
  return { recipe: { ...recipe, name: recipe.name ?? basename(path).replace(/\.json$/, '') }, text };
}

/** Identity of a recipe's content (after defaults): a resumed run must use the recipe it started with. */
export function recipeHash(recipe: Recipe): string {
  // The schema's output lists defaulted keys after given ones, so the same recipe parsed from its
  // file and from the run folder's recipe.json (every key given) could serialize in two orders:
  // hash the form a round trip through JSON gives, which is the same for both (and unchanged for
  // every shipped recipe, whose files give the keys in schema order).
  const canonical = recipeSchema.parse(JSON.parse(JSON.stringify(recipe)));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16);
}
