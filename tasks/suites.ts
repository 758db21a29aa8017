import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { plainText } from '../src/text/plainText.js';
import { printable } from '../src/text/printable.js';
import { issueText } from '../src/schema/parseOptions.js';
import { readInputText } from '../src/schema/inputFile.js';
import { taskFromName } from './registry.js';

export const SUITE_AXES = ['baseline', 'width', 'depth', 'horizon', 'batch', 'dataset', 'architecture', 'synthetic'] as const;

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
      }),
    )
    .min(1),
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

/** The path of a suite shipped in tasks/suites/ ('smoke', 'generalization'). */
export function shippedSuitePath(name: string): string {
  return fileURLToPath(new URL(`../${import.meta.url.includes('/dist/') ? '../' : ''}tasks/suites/${name}.json`, import.meta.url));
}
