// The units a meta-training worker can run (the unit pool's `runUnit`): one kind for now.
import { runTruncationUnit, type TruncationUnitInput } from './truncationUnit.js';

export const UNITS_MODULE = import.meta.url;

export function runUnit(kind: string, input: unknown): unknown {
  if (kind === 'truncation') return runTruncationUnit(input as TruncationUnitInput);
  throw new Error(`unknown meta-training unit kind '${kind}' (known: truncation)`);
}
