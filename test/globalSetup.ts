// Builds dist/ (and the native kernels) once before the tests: worker threads cannot run TypeScript under Node 20, so the
// unit pool (src/parallel/unitPool.ts) runs a project .ts module as its tsc output under dist/.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** tsc's exit status when it found errors but still wrote its output (noEmitOnError is off). */
const ERRORS_OUTPUT_GENERATED = 2;

export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const started = Date.now();
  const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, encoding: 'utf8' });
  const output = `${tsc.stdout ?? ''}${tsc.stderr ?? ''}`.trim();
  if (tsc.error === undefined && tsc.status === ERRORS_OUTPUT_GENERATED) {
    // Type errors, but dist/ was written: the tests can run (type checking is `npm run typecheck`'s job).
    console.error(
      `\n!!! test/globalSetup.ts: \`npx tsc -p tsconfig.json\` reported type errors; dist/ was still built ` + `and the tests run, but fix these:\n${output}\n`,
    );
    return;
  }
  if (tsc.error !== undefined || tsc.status !== 0) {
    throw new Error(
      `test/globalSetup.ts: \`npx tsc -p tsconfig.json\` failed (${tsc.error?.message ?? `exit code ${tsc.status}`}) ` +
        `and did not build dist/, which worker-thread tests run:\n${output}`,
    );
  }
  // The native kernels too, so the tests never run a stale binary against changed C sources.
  const cc = spawnSync('node', ['src/kernels/native/build.mjs'], { cwd: root, encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`test/globalSetup.ts: building the native kernels failed:\n${cc.stdout}${cc.stderr}`);
  console.log(`globalSetup: tsc -p tsconfig.json built dist/ and the native kernels in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
