import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { plainText } from '../src/text/plainText.js';
import { printable } from '../src/text/printable.js';
import { issueText } from '../src/schema/parseOptions.js';
import { readInputText } from '../src/schema/inputFile.js';
import { taskFromName } from './registry.js';

export const SUITE_AXES = ['baseline', 'width', 'depth', 'horizon', 'batch', 'dataset', 'architecture', 'objective', 'synthetic'] as const;

const fraction = z.number().gt(0).lt(1);

/**
 * The learning-rate schedule every baseline gets on an entry (peak = the grid's learning rate).
 * Default: warmup over the first 5% then cosine to 0 (the Reality Check's protocol). `warmupPolynomial`
 * is BERT's and the LAMB paper's: linear warmup, then (1 − t/T)^power to 0.
 */
export const suiteScheduleSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('warmupCosine'), warmupFraction: fraction.default(0.05) }),
  z.strictObject({ type: z.literal('warmupPolynomial'), warmupFraction: fraction, power: z.number().positive().max(10).default(1) }),
]);
export type SuiteSchedule = z.output<typeof suiteScheduleSchema>;

/**
 * Learning rates carried from a smaller batch instead of tuned: each named optimizer runs once on
 * this entry at the learning rate tuning selected on entry `task`, times (B / B_task)^½ (`sqrt`,
 * the LAMB paper's rule) or B / B_task (`linear`, Goyal et al.).
 */
const lrScaledFromSchema = z.strictObject({
  task: z.string().min(1),
  optimizers: z.array(z.string().regex(/^[a-z]+$/)).min(1),
  rule: z.enum(['sqrt', 'linear']),
});
export type LrScaledFrom = z.output<typeof lrScaledFromSchema>;

export const suiteSchema = z.strictObject({
  name: plainText(200).min(1),
  description: plainText(10_000),
  tasks: z
    .array(
      z.strictObject({
        /** A parseable task name. */
        task: z.string().min(1),
        /** Inner training steps for this entry. */
        steps: z.number().int().min(1).max(1_000_000),
        /** Which generalization axis this entry probes. */
        axis: z.enum(SUITE_AXES).default('baseline'),
        /** How far along that axis, relative to meta-training (×1, ×4, …). */
        factor: z.number().positive().optional(),
        schedule: suiteScheduleSchema.optional(),
        lrScaledFrom: lrScaledFromSchema.optional(),
      }),
    )
    .min(1),
  /** What `lopt bench --suite` runs when no --optimizers is given (default: DEFAULT_BENCH_OPTIMIZERS). */
  optimizers: z.array(z.string().min(1)).min(1).optional(),
});
export type Suite = z.output<typeof suiteSchema>;

const MAX_SUITE_BYTES = 1 << 20;

/** Validates a parsed suite: schema first, then every task name must build. */
export function parseSuite(json: unknown, source = 'suite'): Suite {
  const r = suiteSchema.safeParse(json);
  if (!r.success) throw new Error(`${printable(source, 200)}: ${issueText(r.error, json)}`);
  r.data.tasks.forEach((t, i) => {
    try {
      taskFromName(t.task);
    } catch (e) {
      throw new Error(`${printable(source, 200)}: tasks.${i}.task: ${(e as Error).message}`);
    }
    const from = t.lrScaledFrom;
    if (from === undefined) return;
    const base = r.data.tasks.find((u) => u.task === from.task);
    if (base === undefined || base === t || base.lrScaledFrom !== undefined) {
      throw new Error(
        `${printable(source, 200)}: tasks.${i}.lrScaledFrom.task must name another entry of the suite whose learning rates are tuned; got ${JSON.stringify(printable(from.task, 200))}`,
      );
    }
  });
  return r.data;
}

/** Reads a suite file (untrusted input: size-capped, JSON-parsed, validated). */
export function loadSuite(path: string): Suite {
  const text = readInputText(path, 'suite', MAX_SUITE_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseSuite(json, path);
}

/** The suites shipped in tasks/suites/. */
export const SHIPPED_SUITES = ['smoke', 'generalization', 'seeds', 'reality-check', 'meta-validation', 'meta-validation-sp'] as const;

/** The path of a suite shipped in tasks/suites/ (one of SHIPPED_SUITES). */
export function shippedSuitePath(name: string): string {
  return fileURLToPath(new URL(`../${import.meta.url.includes('/dist/') ? '../' : ''}tasks/suites/${name}.json`, import.meta.url));
}
