// `lopt convert FILE --out X.lopt`: a learned optimizer's file (a released VeLO params file, or a
// .lopt) rewritten in lopt's checkpoint format, after full validation.
import { existsSync } from 'node:fs';
import { gitCommit, saveCheckpoint } from '../checkpoint/index.js';
import { createLearnedOptimizer } from '../lopt/registry.js';
import { readLearnedOptimizerFile } from '../lopt/io.js';

export interface ConvertOptions {
  file: string;
  out: string;
  force?: boolean;
}

/** Converts and returns a one-line summary of what was written. */
export async function convertCommand(o: ConvertOptions): Promise<string> {
  if (!o.out.endsWith('.lopt')) throw new Error(`convert: --out must name a .lopt file; got '${o.out}'`);
  if (existsSync(o.out) && !o.force) throw new Error(`convert: ${o.out} exists; choose another --out or pass --force to replace it`);
  const ckpt = await readLearnedOptimizerFile(o.file);
  // The architecture and config must rebuild (a checkpoint of an unknown config is refused here, not at load).
  const lo = createLearnedOptimizer(ckpt.arch, ckpt.config);
  const commit = await gitCommit();
  await saveCheckpoint(o.out, { ...ckpt, provenance: { ...ckpt.provenance, createdAt: new Date().toISOString(), ...(commit ? { gitCommit: commit } : {}) } });
  const count = ckpt.theta.data.reduce((n, d) => n + d.length, 0);
  return `wrote ${o.out}: ${lo.arch} ${JSON.stringify(ckpt.config)}, ${count.toLocaleString('en-US')} meta-parameters${ckpt.provenance.source ? ` (${ckpt.provenance.source})` : ''}`;
}
