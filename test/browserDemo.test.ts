// The browser build, in a real browser: the demo page built by `npm run demo:web` served on
// 127.0.0.1 and driven in headless Chromium (Debian's, through playwright-core). The page loads
// without console errors, trains μLO and Adam side by side, both curves go down, the numbers it
// shows equal the same run in Node, and a dropped corrupt checkpoint gives a clear error.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { sealCheckpoint } from '../src/checkpoint/write.js';
import { useKernels } from '../src/kernels/native.js';
import { loadLearnedOptimizer } from '../src/lopt/io.js';
import { buildDemo } from '../src/web/buildDemo.js';
import { decodeDemoImages, startDemoRun, type DemoConfig } from '../src/web/demoTraining.js';
import { loadCheckpoint } from '../src/checkpoint/read.js';
import { serveFolder } from './helpers/staticServer.js';

/** Debian's chromium (apt install chromium); the test says so when it is missing rather than skip. */
const CHROMIUM = process.env['LOPT_CHROMIUM'] ?? '/usr/bin/chromium';
const CONFIG: DemoConfig = { width: 64, depth: 2, steps: 150, batchSize: 64, seed: 3, adamLr: 0.1 };

let out: string;
let server: { url: string; close: () => Promise<void> };
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt install chromium (or set LOPT_CHROMIUM)`);
  out = mkdtempSync(join(tmpdir(), 'lopt-web-'));
  await buildDemo(out);
  server = await serveFolder(out);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  await page.goto(server.url);
  await page.waitForSelector('#result[data-state="ready"]', { state: 'attached', timeout: 60_000 });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('the demo page in headless Chromium', () => {
  let shown: { losses: { learned: number[]; adam: number[] }; testAccuracy: { learned: number; adam: number } };

  it('trains μLO and Adam side by side without console errors, and both curves go down', async () => {
    for (const [id, v] of Object.entries({ width: CONFIG.width, depth: CONFIG.depth })) await page.selectOption(`#${id}`, String(v));
    for (const [id, v] of Object.entries({ steps: CONFIG.steps, batch: CONFIG.batchSize, seed: CONFIG.seed, 'adam-lr': CONFIG.adamLr }))
      await page.fill(`#${id}`, String(v));
    await page.click('#train');
    await page.waitForSelector('#result[data-state="done"]', { state: 'attached', timeout: 120_000 });
    shown = JSON.parse(await page.$eval('#result', (e) => (e as unknown as { value: string }).value)) as typeof shown;
    expect(consoleErrors).toEqual([]);
    for (const [name, curve] of Object.entries(shown.losses)) {
      expect(curve).toHaveLength(CONFIG.steps);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(curve.slice(-10)), name).toBeLessThan(0.8 * mean(curve.slice(0, 5)));
    }
    // The table shows steps/s and test accuracy for both.
    for (const row of ['row-learned', 'row-adam']) {
      expect(Number(await page.textContent(`#${row} .speed`))).toBeGreaterThan(0);
      expect(await page.textContent(`#${row} .accuracy`)).toMatch(/^\d+\.\d\d%$/);
    }
    if (process.env['LOPT_SCREENSHOT']) await page.screenshot({ path: process.env['LOPT_SCREENSHOT'], fullPage: true });
  }, 180_000);

  it('shows the numbers the same seed gives in Node (wasm, the tfjs-ops path a browser runs)', async () => {
    await initBackend({ backend: 'wasm', log: () => {} });
    const previous = useKernels('ops');
    const lo = await loadLearnedOptimizer('mulo-mnist');
    const run = startDemoRun(decodeDemoImages(readFileSync(join(out, 'data', 'mnist8.bin'))), CONFIG, lo);
    const node = { learned: [] as number[], adam: [] as number[] };
    try {
      for (let s = await run.step(); s !== null; s = await run.step()) {
        node.learned.push(s.learned);
        node.adam.push(s.adam);
      }
      const acc = run.testAccuracy();
      expect(shown.losses).toEqual(node);
      expect(shown.testAccuracy).toEqual(acc);
      // What the table shows, cell for cell.
      expect(await page.textContent('#row-learned .loss')).toBe(node.learned.at(-1)!.toPrecision(5));
      expect(await page.textContent('#row-adam .loss')).toBe(node.adam.at(-1)!.toPrecision(5));
      expect(await page.textContent('#row-learned .accuracy')).toBe(`${(acc.learned * 100).toFixed(2)}%`);
    } finally {
      run.dispose();
      lo.dispose();
      useKernels(previous);
    }
  }, 120_000);

  it('trains on WebGL too (SwiftShader in headless Chromium): both curves go down', async () => {
    await page.selectOption('#backend', 'webgl');
    await page.fill('#steps', '60');
    await page.click('#train');
    await page.waitForSelector('#result[data-state="done"]', { state: 'attached', timeout: 120_000 });
    const run = JSON.parse(await page.$eval('#result', (e) => (e as unknown as { value: string }).value)) as typeof shown & { backend: string };
    expect(run.backend).toBe('webgl');
    for (const [name, curve] of Object.entries(run.losses)) {
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(mean(curve.slice(-10)), name).toBeLessThan(0.8 * mean(curve.slice(0, 5)));
    }
    expect(consoleErrors).toEqual([]);
  }, 150_000);

  it('the model-card tab shows a dropped checkpoint, and a clear error for a corrupt one', async () => {
    await page.click('#tab-card');
    await page.setInputFiles('#file', join('checkpoints', 'mulo-mnist.lopt'));
    await page.waitForSelector('#card dt');
    const card = await page.textContent('#card');
    expect(card).toContain('small_fc_lopt');
    expect(card).toContain('meta-parameters');
    // A version-2 file (checksummed) with one payload byte flipped.
    const sealed = sealCheckpoint(await loadCheckpoint(join('checkpoints', 'mulo-mnist.lopt')));
    sealed[sealed.length - 100] = sealed[sealed.length - 100]! ^ 0xff;
    const corrupt = join(out, 'corrupt.lopt');
    writeFileSync(corrupt, sealed);
    await page.setInputFiles('#file', corrupt);
    await page.waitForSelector('#card-error:not([hidden])');
    expect(await page.textContent('#card-error')).toMatch(/Not a usable learned-optimizer checkpoint: .*checksum mismatch.*the file is corrupt/);
    expect(await page.$$('#card dt')).toHaveLength(0);
    // Not a checkpoint at all.
    const json = join(out, 'not-a-checkpoint.lopt');
    writeFileSync(json, '{"format": "lopt"}');
    await page.setInputFiles('#file', json);
    await page.waitForFunction("/looks like JSON/.test(document.getElementById('card-error')?.textContent ?? '')");
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
