// Every kind of work unit a worker can run (the unit pool's `runUnit`): meta-training truncations
// and benchmark runs. Units are plain data in and out, so they run alike in any thread.
import { runBenchUnit, type BenchRunInput } from './evaluate/benchRun.js';
import { runTruncationUnit, type TruncationUnitInput } from './meta/truncationUnit.js';

export const UNITS_MODULE = import.meta.url;

export function runUnit(kind: string, input: unknown): unknown {
  if (kind === 'truncation') return runTruncationUnit(input as TruncationUnitInput);
  if (kind === 'bench-run') return runBenchUnit(input as BenchRunInput);
  throw new Error(`unknown work unit kind '${kind}' (known: truncation, bench-run)`);
}
