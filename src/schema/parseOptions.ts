import { z } from 'zod';
import { printable } from '../text/printable.js';

/** The options a caller may pass for a zod shape: what `parseOptions(owner, shape, input)` accepts. */
export type OptionsOf<S extends z.ZodRawShape> = z.input<z.ZodObject<S>>;

/** A value as a message shows it: short, and escaped (it may come from a file). */
export function showValue(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'number') return String(v);
  try {
    return printable(JSON.stringify(v) ?? String(v), 120);
  } catch {
    return printable(String(v), 120);
  }
}

/**
 * Validates an options object (an optimizer's, a task's) before any work: unknown names, missing
 * required values and bad values all throw an Error naming the owner, the option, what was given
 * and what is allowed. The shape's field messages complete "option 'x' …".
 */
export function parseOptions<S extends z.ZodRawShape>(owner: string, shape: S, input: unknown): z.output<z.ZodObject<S>> {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new Error(`${owner}: options must be an object; got ${showValue(input)}`);
  }
  const given = (input ?? {}) as Record<string, unknown>;
  const result = z.strictObject(shape).safeParse(given);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw new Error(`${owner}: unknown option '${printable(String(issue.keys[0]), 80)}'; allowed options: ${Object.keys(shape).join(', ')}`);
  }
  const key = String(issue.path[0] ?? '');
  if (given[key] === undefined) {
    throw new Error(`${owner}: option '${key}' is required; it ${issue.message}`);
  }
  const where = issue.path.length > 1 ? ` (at ${printable(issue.path.join('.'), 120)})` : '';
  throw new Error(`${owner}: option '${key}'${where} ${issue.message}; got ${showValue(given[key])}`);
}

/**
 * The first problem zod found in a document (a recipe, a suite, a task family) as
 * `path: message[ (keys)][; found value]`: field path and keys from the input escaped, the value
 * found at the path shown when `withFound`.
 */
export function issueText(error: z.ZodError, input: unknown, withFound = true): string {
  const issue = error.issues[0]!;
  const path = issue.path.length > 0 ? printable(issue.path.map(String).join('.'), 120) : '(root)';
  const keys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.map((k) => `'${printable(k, 80)}'`).join(', ')})` : '';
  const found = withFound && issue.code !== 'unrecognized_keys' ? `; found ${describeFound(valueAt(input, issue.path))}` : '';
  return `${path}: ${printable(issue.message, 300)}${keys}${found}`;
}

function describeFound(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return printable(s === undefined ? String(v) : s, 60);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}
