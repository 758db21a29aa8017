// Builds the native kernels (src/kernels/native/*.c) into dist/native/lopt_kernels.node with the
// system C compiler, for this machine's CPU. Optional: without a compiler or Node's headers it says
// why and lopt runs its tfjs-ops path. Run by `npm run build` and `prepare` (npm install / npm ci).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const out = join(root, 'dist', 'native', 'lopt_kernels.node');
const sources = ['perParamStep.c', 'mlpTask.c', 'gemm.c', 'addon.c'].map((f) => join(here, f));

const cc = process.env.CC ?? 'cc';
// Node-API headers: beside the running node (official builds, nvm), or Debian's nodejs package.
const includeDirs = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'];
const include = includeDirs.find((d) => existsSync(join(d, 'node_api.h')));
if (include === undefined) {
  console.warn(`lopt: native kernels not built (no node_api.h in ${includeDirs.join(' or ')}); the tfjs-ops path will be used`);
  process.exit(0);
}
// -march=native: the kernels are built where they run (npm install); LOPT_MARCH overrides it.
const march = process.env.LOPT_MARCH ?? 'native';
const args = [
  '-O3',
  `-march=${march}`,
  '-fopenmp',
  '-fPIC',
  '-shared',
  '-std=gnu11',
  '-Wall',
  '-Wextra',
  '-fno-math-errno',
  '-DNODE_GYP_MODULE_NAME=lopt_kernels',
  `-I${include}`,
  ...sources,
  '-o',
  `${out}.tmp`,
];
try {
  mkdirSync(dirname(out), { recursive: true });
  execFileSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  renameSync(`${out}.tmp`, out);
  console.log(`lopt: native kernels built (${cc} -march=${march}) → ${out}`);
} catch (e) {
  const why = e && typeof e === 'object' && 'code' in e && e.code === 'ENOENT' ? `no C compiler '${cc}' (apt-get install gcc)` : 'the compiler failed (above)';
  console.warn(`lopt: native kernels not built: ${why}; the tfjs-ops path will be used`);
}
