// The browser entry stays browser-safe: src/browser.ts and the demo page typecheck with the DOM's
// types and without Node's (a `node:` import, Buffer or process anywhere in their import graph
// fails here), and package.json sends bundlers that ask for 'browser' to it.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

describe('browser entry', () => {
  it('typechecks with lib DOM and no Node types (src/web/tsconfig.json)', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'src/web/tsconfig.json'], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it("package.json: the 'browser' condition and the ./browser subpath name the built browser entry, types included", () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, Record<string, unknown>> };
    const browser = { types: './dist/src/browser.d.ts', default: './dist/src/browser.js' };
    expect(Object.keys(pkg.exports['.']!)[0]).toBe('browser'); // first, so bundlers pick it before 'default'
    expect(pkg.exports['.']!['browser']).toEqual(browser);
    expect(pkg.exports['./browser']).toEqual(browser);
    for (const f of Object.values(browser)) expect(existsSync(f), f).toBe(true);
  });

  it('exports what a page needs, and no Node-only loader', async () => {
    const entry = (await import('../src/browser.js')) as Record<string, unknown>;
    for (const name of [
      'adam',
      'lamb',
      'lars',
      'nesterov',
      'mkor',
      'warmupCosine',
      'asTfjsOptimizer',
      'mupMlp',
      'mupScaleFor',
      'smallFcLopt',
      'mlpLopt',
      'velo',
      'loadLearnedOptimizer',
      'decodeLearnedOptimizer',
      'decodeCheckpoint',
      'initBrowserBackend',
    ]) {
      expect(typeof entry[name], name).toBe('function');
    }
    for (const name of ['initBackend', 'saveCheckpoint', 'loadCheckpoint', 'taskFromName', 'saveLearnedOptimizer']) expect(entry[name], name).toBeUndefined();
  });
});
