import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // tfjs keeps one global engine per process; isolate each file in its own fork.
    pool: 'forks',
    // The last line of every run is `N passed, N failed`, the summary CI reads.
    reporters: ['default', './test/reporters/summaryLine.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
