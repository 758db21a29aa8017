// `lopt worker --queue redis://…`: serves truncation units from a queue until stopped (Ctrl-C or
// SIGTERM: the units running finish first), logging one plain line per event.
import { initBackend, type BackendName } from '../backend/select.js';
import { ownBuild } from '../distributed/unitJob.js';
import { parseQueueUrl } from '../distributed/queueUrl.js';
import { runQueueWorker } from '../distributed/queueWorker.js';
import { kernelMode } from '../kernels/native.js';
import { loadRecipe, recipeHash } from '../meta/recipe.js';
import { printableMessage } from '../text/printable.js';

export interface WorkerCommandOptions {
  queue: string;
  threads: number;
  backend?: BackendName | 'auto';
  recipe?: string;
  stalledTimeout: number;
}

export async function workerCommand(o: WorkerCommandOptions): Promise<number> {
  const endpoint = parseQueueUrl(o.queue);
  const hash = o.recipe !== undefined ? recipeHash((await loadRecipe(o.recipe)).recipe) : undefined;
  const backend = await initBackend(o.backend ? { backend: o.backend, log: () => {} } : { log: () => {} });
  const build = await ownBuild(backend, kernelMode());
  const stop = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts === 1) {
      console.error('lopt worker: stopping after the units running now (Ctrl-C again to quit at once)');
      stop.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = (line: string) => console.log(printableMessage(`${new Date().toISOString()} ${line}`));
  try {
    const result = await runQueueWorker({
      endpoint,
      threads: o.threads,
      backend,
      build,
      ...(hash !== undefined ? { recipeHash: hash } : {}),
      stalledSeconds: o.stalledTimeout,
      log,
      signal: stop.signal,
    });
    log(`stopped after ${result.unitsDone} unit${result.unitsDone === 1 ? '' : 's'}`);
    return result.refused !== undefined ? 2 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
