/**
 * lopt in a browser: the optimizers, schedules, the tfjs adapter, μP models, learned optimizers and
 * checkpoint decoding, without Node's file system, worker threads, compiled kernels or tasks.
 * `loadLearnedOptimizer(url | bytes)` fetches or decodes a `.lopt` file.
 */
export * from './core.js';

export { initBrowserBackend, BROWSER_BACKENDS, type BrowserBackendName, type BrowserBackendOptions } from './backend/browser.js';
export { loadLearnedOptimizerFrom as loadLearnedOptimizer } from './lopt/fetch.js';
