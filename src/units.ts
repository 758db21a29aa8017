// Every kind of work unit a worker can run: meta-training truncations and benchmark runs. Units
// are plain data in and out, so they run alike in any thread. The table's type is what makes
// `pool.run(kind, input)` checked: createUnitPool<Units>({ unitsModule: UNITS_MODULE, … }).
import { runBenchUnit } from './evaluate/benchRun.js';
import { runTruncationUnit } from './meta/truncationUnit.js';

export const UNITS_MODULE = import.meta.url;

export const units = {
  truncation: runTruncationUnit,
  'bench-run': runBenchUnit,
};

export type Units = typeof units;
