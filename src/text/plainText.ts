import { z } from 'zod';
import { hasControlCharacters } from './printable.js';

/**
 * A zod string for free text in an input file (a recipe's or a suite's name and description):
 * at most `max` characters, and no control characters, so that it can be shown on a terminal
 * as it is (dashboard, task lists) and can never carry an escape sequence.
 */
export function plainText(max: number) {
  return z
    .string()
    .max(max)
    .refine((s) => !hasControlCharacters(s), { message: 'must not hold control characters (escape sequences, line breaks, tabs)' });
}
