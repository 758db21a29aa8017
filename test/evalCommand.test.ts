// `lopt eval`: one task, a learned optimizer against tuned Adam, as a table and a terminal chart.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { evalCommand } from '../src/cli/benchCommand.js';
import { saveLearnedOptimizer } from '../src/lopt/io.js';
import { smallFcLopt } from '../src/lopt/smallFcLopt.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  dir = await mkdtemp(join(tmpdir(), 'lopt-eval-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lopt eval', () => {
  it('prints tuned Adam and the learned optimizer side by side, with a chart of both curves', async () => {
    const lo = smallFcLopt({ mup: true });
    const theta = lo.initTheta(0);
    const path = join(dir, 'untrained.lopt');
    await saveLearnedOptimizer(path, lo, theta);
    tf.dispose(Object.values(theta));
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.join(' '));
    });
    try {
      await evalCommand({
        checkpoint: path,
        task: 'mlp-mnist8-w16-d1-relu-b32-mup',
        steps: 40,
        seeds: 1,
        budget: 3,
        workers: 1,
        out: join(dir, 'out'),
        backend: 'wasm',
      });
    } finally {
      log.mockRestore();
    }
    const text = lines.join('\n');
    expect(text).toMatch(/^adam\s+\d(\.\d)?e[-+]\d/m);
    expect(text).toMatch(new RegExp(`^lopt:${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+—`, 'm'));
    expect(text).toContain('training loss (smoothed)');
    expect(text).toMatch(/[┤┼]/);
  });
});
