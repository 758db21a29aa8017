import { z } from 'zod';
import { isSchedule, type Schedule } from './schedules.js';
import type { MupScale } from './transforms/scaleByMup.js';

/** Field schemas whose messages say what is allowed (they complete "option 'x' …"). */
const num = (what: string, ok: (x: number) => boolean) => z.number({ error: `must be ${what}` }).refine(ok, { error: `must be ${what}` });

export const field = {
  learningRate: () =>
    z.custom<number | Schedule | ((count: number) => number)>(
      (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0) || isSchedule(v) || typeof v === 'function',
      { error: 'must be a finite number >= 0 or a schedule (a function of the step count)' },
    ),
  nonNegative: () => num('a finite number >= 0', (x) => x >= 0),
  positive: () => num('a finite number > 0', (x) => x > 0),
  beta: () => num('a finite number in [0, 1)', (x) => x >= 0 && x < 1),
  real: () => num('a finite number', () => true),
  count: () => num('an integer >= 1', (x) => Number.isInteger(x) && x >= 1),
  nonNegativeInteger: () => num('an integer >= 0', (x) => Number.isInteger(x) && x >= 0),
  flag: () => z.boolean({ error: 'must be true or false' }),
  patterns: () =>
    z
      .array(z.string(), { error: 'must be an array of regular-expression strings matched against parameter names' })
      .refine((list) => list.every(isRegExpSource), { error: 'must hold valid regular expressions' }),
  mupScale: () =>
    z.custom<MupScale>(
      (v) =>
        typeof v === 'function' ||
        (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((s) => typeof s === 'number' && Number.isFinite(s) && s >= 0)),
      { error: 'must map every parameter name to a finite number >= 0 (or be a function of name and shape)' },
    ),
};

function isRegExpSource(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

/** A name predicate from regular-expression sources (re.search semantics, as tensorflow_addons). */
export function matchesAny(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => new RegExp(p));
  return (name) => res.some((r) => r.test(name));
}
