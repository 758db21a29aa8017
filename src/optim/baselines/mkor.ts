import { z } from 'zod';
import { parseOptions, type OptionsOf } from '../../schema/parseOptions.js';
import { field } from '../options.js';
import { mkorClock, scaleByMkor } from '../mkor/scaleByMkor.js';
import { identity } from '../transform.js';
import { addDecayedWeights } from '../transforms/addDecayedWeights.js';
import { clipByGlobalNorm } from '../transforms/clipByGlobalNorm.js';
import { scaleByAdam } from '../transforms/scaleByAdam.js';
import { scaleByTrustRatio } from '../transforms/scaleByTrustRatio.js';
import { scaleByLearningRate } from '../transforms/scale.js';
import { trace } from '../transforms/trace.js';
import { commonFields, except, makeOptimizer, withCommon } from './common.js';

const layerSpec = z.strictObject(
  {
    kernel: z.string({ error: 'must name the kernel parameter' }).min(1, { error: 'must name the kernel parameter' }),
    bias: z.string({ error: 'must name the bias parameter, or be null' }).min(1).nullable(),
    kind: z.enum(['dense', 'conv'], { error: "must be 'dense' or 'conv'" }),
  },
  { error: 'must be { kernel, bias, kind }' },
);

const num01 = () =>
  z
    .number({ error: 'must be a number in (0, 1]' })
    .refine((x) => x > 0 && x <= 1, { error: 'must be a number in (0, 1]' })
    .default(0.1);

const mkorFields = {
  learningRate: field.learningRate(),
  /** The first-order optimizer that steps on the preconditioned gradients: the ResNet runs' SGD, or the BERT runs' LAMB. */
  firstOrder: z.enum(['sgd', 'lamb'], { error: "must be 'sgd' or 'lamb'" }).default('sgd'),
  /** sgd: PyTorch SGD momentum (the ResNet runs: 0.9). */
  momentum: field.beta().default(0.9),
  nesterov: field.flag().default(false),
  /** lamb: as the lamb optimizer. */
  beta1: field.beta().default(0.9),
  beta2: field.beta().default(0.999),
  epsilon: field.nonNegative().default(1e-6),
  /** sgd: L2 added to the preconditioned gradient (PyTorch SGD); lamb: decoupled, as LAMB. */
  weightDecay: field.nonNegative().default(0),
  excludeFromWeightDecay: field.patterns().optional(),
  /** Global-norm clip of the preconditioned gradients (apex FusedLAMB's max_grad_norm, 1.0 in the BERT runs); absent: none. */
  maxGradNorm: field.positive().optional(),
  /** The factors are refreshed every this many updates (the authors' inv_freq). */
  updateEvery: field.count().default(10),
  /** …and at every update before this one (the authors' warmup_steps: 0 in the package and BERT, 10 for ResNet). */
  warmupSteps: field.nonNegativeInteger().default(0),
  /**
   * MKOR-H: fall back to the first-order optimizer, per member and for good, once the loss stops
   * falling fast enough (src/optim/mkor/hybridSwitch.ts; the rule is ours, as the paper does not
   * publish one). Needs context.loss. Absent: plain MKOR.
   */
  hybrid: z
    .strictObject(
      { window: field.count().default(50), beta: num01() },
      { error: 'must be { window?: steps between checks (default 50), beta?: threshold in (0, 1] (default 0.1) }' },
    )
    .optional(),
  /** The layers to precondition (a task's `layers`); every other parameter gets its raw gradient. */
  layers: z.array(layerSpec, { error: 'must be an array of { kernel, bias, kind } layers' }).min(1, { error: 'must name at least one layer' }),
  ...commonFields,
};

/** Options of mkor: derived from the schema above. */
export type MkorOptions = OptionsOf<typeof mkorFields>;

function build(name: string, input: unknown, defaults: Partial<MkorOptions>) {
  const given = typeof input === 'object' && input !== null ? input : {};
  const o = parseOptions(name, mkorFields, { ...defaults, ...given });
  const names = new Set<string>();
  for (const l of o.layers) {
    for (const p of [l.kernel, l.bias]) {
      if (p === null) continue;
      if (names.has(p)) throw new Error(`${name}: option 'layers' names parameter '${p}' twice; each parameter belongs to one layer`);
      names.add(p);
    }
  }
  const population = o.population !== undefined;
  const schedule = { every: o.updateEvery, warmupSteps: o.warmupSteps };
  const firstOrder =
    o.firstOrder === 'sgd'
      ? [except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay), o.momentum > 0 ? trace({ decay: o.momentum, nesterov: o.nesterov }) : identity]
      : [
          scaleByAdam({ b1: o.beta1, b2: o.beta2, eps: o.epsilon }),
          except(addDecayedWeights(o.weightDecay), o.excludeFromWeightDecay),
          except(scaleByTrustRatio({ population }), o.excludeFromWeightDecay),
        ];
  return makeOptimizer(
    name,
    o,
    withCommon(name, o, [
      scaleByMkor(o.layers, schedule, population, o.hybrid ?? null),
      o.maxGradNorm === undefined ? identity : clipByGlobalNorm(o.maxGradNorm, population),
      ...firstOrder,
      scaleByLearningRate(o.learningRate),
    ]),
    { schedule, clock: mkorClock },
  );
}

/**
 * MKOR (Mozaffari et al. 2023), pinned to the authors' code (Mohammad-Mozaffari/mkor @3a0e3bb):
 * each layer's gradient [∇W; ∇bᵀ] is preconditioned as A⁻¹·[∇W; ∇bᵀ]·G⁻¹ and rescaled to the
 * raw gradient's norm, with A⁻¹ and G⁻¹ refreshed every `updateEvery` updates by decayed rank-1
 * Sherman–Morrison updates from the layer's mean input and output gradient; then a first-order
 * step: PyTorch SGD with momentum (default, as their ResNet runs) or LAMB (`firstOrder: 'lamb'`,
 * as their BERT runs). Needs `context.layerStatistics` on the updates for which `wantsLayerStatistics(state)` is true.
 */
export function mkor(options: MkorOptions) {
  return build('mkor', options, {});
}

/** MKOR on LAMB with apex FusedLAMB's global-norm clip 1.0 of the preconditioned gradients: the authors' BERT configuration. */
export function mkorlamb(options: MkorOptions) {
  return build('mkorlamb', options, { firstOrder: 'lamb', maxGradNorm: 1 });
}
