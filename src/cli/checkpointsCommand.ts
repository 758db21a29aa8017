import { loadLearnedOptimizer, shippedCheckpointNames } from '../lopt/io.js';

interface ShippedEval {
  metaTraining?: { recipe?: string; outerSteps?: number };
  bench?: { suite?: string; tasks?: number; lowerFinalLossThanEveryTunedBaseline?: number };
}

/** `lopt checkpoints`: every shipped learned optimizer (validated on load), with its card's headline. */
export async function describeShippedCheckpoints(): Promise<string[]> {
  const names = shippedCheckpointNames();
  if (names.length === 0) return ['no shipped checkpoints'];
  const lines: string[] = [];
  for (const name of names) {
    const lo = await loadLearnedOptimizer(name);
    const ev = (lo.checkpoint.eval ?? {}) as ShippedEval;
    const p = lo.checkpoint.provenance;
    const bench = ev.bench?.tasks
      ? `lower final loss than every tuned baseline on ${ev.bench.lowerFinalLossThanEveryTunedBaseline} of ${ev.bench.tasks} ${ev.bench.suite ?? ''} tasks`
      : 'not evaluated';
    lines.push(
      `${name.padEnd(16)} ${lo.learnedOptimizer.arch} ${JSON.stringify(lo.learnedOptimizer.config)}, recipe ${p.recipe ?? '?'} (theta of outer step ${p.outerStep ?? '?'} of ${ev.metaTraining?.outerSteps ?? '?'}); ${bench}; card: checkpoints/${name}.md`,
    );
    lo.dispose();
  }
  return lines;
}
