/** lopt: learned optimizers and reference-exact hand-designed baselines for TensorFlow.js (the Node entry; src/browser.ts is the browser's). */
export * from './core.js';

export { initBackend, parseBackendName, type BackendName } from './backend/select.js';
export { loadLearnedOptimizer, readLearnedOptimizerFile, saveLearnedOptimizer } from './lopt/io.js';
export { loadCheckpoint, saveCheckpoint } from './checkpoint/index.js';

export type { Task, TaskMeta, Batch, BatchStream, Split } from '../tasks/types.js';
export { taskFromName, taskNameForms } from '../tasks/registry.js';
export { familyFromSpec, fixedFamily, mlpFamily, type TaskFamily } from '../tasks/families.js';
export { loadSuite, parseSuite, type Suite } from '../tasks/suites.js';
