import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The project root, one folder up from this file.
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // tfjs keeps one global engine per process; isolate each file in its own fork.
    pool: 'forks',
    // The unit-pool memory test collects garbage on purpose.
    execArgv: ['--expose-gc'],
    globalSetup: ['./test/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The last line of every run is `N passed, N failed`, the summary CI reads.
    reporters: ['default', './test/reporters/summaryLine.ts'],
  },
});
