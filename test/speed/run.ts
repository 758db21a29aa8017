import { initBackend } from '../../src/backend/select.js';
import { benchDataLoading } from './dataLoading.js';
import { benchLearnedOptimizer } from './learnedOptimizer.js';
import { benchVelo } from './velo.js';
import { benchMlpStep } from './mlpStep.js';
import { benchOptimizerSteps } from './optimizerSteps.js';
import { benchPopulation } from './population.js';
import { benchMetaTraining } from './metaTraining.js';
import { benchPesVsPytorch } from './pesVsPytorch.js';
import { benchSmokeSuite } from './benchSmoke.js';
import { benchQueue } from './queue.js';
import type { BenchRow } from './row.js';

/** `npm run bench`: every speed figure of the project as a ratio measured in this run, beside its goal. */
async function main(): Promise<void> {
  const backend = await initBackend({ backend: 'wasm' });
  const rows: BenchRow[] = [];
  // `npm run bench -- meta` runs only the groups whose name contains an argument.
  const only = process.argv.slice(2);
  const want = (group: string) => only.length === 0 || only.some((o) => group.includes(o));
  // First: it times the first dataset load of this process.
  if (want('data')) rows.push(...benchDataLoading());
  if (want('mlp-step')) rows.push(...(await benchMlpStep()));
  if (want('optimizer-steps')) rows.push(...benchOptimizerSteps());
  if (want('population')) rows.push(...benchPopulation());
  if (want('learned-optimizer')) rows.push(...benchLearnedOptimizer());
  if (want('velo')) rows.push(...benchVelo());
  if (want('meta-training')) rows.push(...(await benchMetaTraining()));
  if (want('meta-pes-vs-pytorch')) rows.push(...(await benchPesVsPytorch()));
  if (want('bench-smoke')) rows.push(...(await benchSmokeSuite()));
  if (want('queue')) rows.push(...(await benchQueue()));

  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`lopt speed benchmarks on ${backend} (figures measured in this run: ratios unless the name gives a unit)\n`);
  console.log(`${'figure'.padEnd(width)}  ${'value'.padStart(7)}  ${'goal'.padEnd(13)}  status  detail`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(width)}  ${r.value.toFixed(2).padStart(7)}  ${r.goal.padEnd(13)}  ${(r.ok ? 'ok' : 'MISSED').padEnd(6)}  ${r.detail ?? ''}`);
  }
  const missed = rows.filter((r) => !r.ok).length;
  console.log(`\n${rows.length - missed} goals met, ${missed} missed`);
}

main().catch((e: unknown) => {
  console.error(`lopt bench: ${(e as Error).stack ?? String(e)}`);
  process.exitCode = 1;
});
