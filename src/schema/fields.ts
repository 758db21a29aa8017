import { z } from 'zod';

/** Field schemas for parseOptions whose messages complete "option 'x' …" with what is allowed. */

/** One of a fixed list of values. */
export const oneOf = <T>(allowed: readonly T[]) =>
  z.custom<T>((v) => allowed.includes(v as T), {
    error: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`,
  });

/** An integer in [lo, hi]. */
export const intIn = (lo: number, hi: number) =>
  z.custom<number>((v) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi, {
    error: `must be an integer in [${lo}, ${hi}]`,
  });
