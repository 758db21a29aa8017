import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ReferenceCase {
  id: string;
  optimizer: string;
  options: Record<string, unknown>;
  params: Record<string, number[]>;
  gradients: Record<string, number[]> | 'quadratic' | { target: Record<string, number[]> };
  steps: Record<string, number[]>[];
  note?: string;
}

/** ../shared/reference/optimizer-vectors.json, beside the project root. */
export function loadOptimizerVectors(): ReferenceCase[] {
  const path = fileURLToPath(new URL('../../../shared/reference/optimizer-vectors.json', import.meta.url));
  return (JSON.parse(readFileSync(path, 'utf8')) as { cases: ReferenceCase[] }).cases;
}

/** |a − b| ≤ rtol·|b| + atol, elementwise; returns the first violation as text, or null. */
export function mismatch(actual: ArrayLike<number>, expected: readonly number[], rtol: number, atol = 0): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} vs ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    if (!(Math.abs(a - b) <= rtol * Math.abs(b) + atol)) return `[${i}] ${a} vs ${b} (rel ${Math.abs(a - b) / Math.abs(b)})`;
  }
  return null;
}
