import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/random/rng.js';
import { familyFromSpec, fixedFamily } from '../tasks/families.js';
import { parseMlpName } from '../tasks/mlp.js';
import { parseMlmName } from '../tasks/mlm/mlmTask.js';
import { parsePreferenceName } from '../tasks/preference/config.js';

describe('task families', () => {
  it('an MLP family samples valid task names reproducibly from a seeded stream', () => {
    const fam = familyFromSpec({
      type: 'mlp',
      widths: [32, 64, 128],
      depth: { min: 1, max: 3 },
      batchSize: { min: 64, max: 4096 },
      activations: ['relu', 'tanh'],
      imageSizes: [8, 16],
    });
    const a = Array.from({ length: 50 }, (_, i) => fam.sample(Rng.from(7).fork(i)));
    const b = Array.from({ length: 50 }, (_, i) => fam.sample(Rng.from(7).fork(i)));
    expect(a).toEqual(b);
    const configs = a.map(parseMlpName);
    expect(new Set(configs.map((c) => c.width))).toEqual(new Set([32, 64, 128]));
    expect(new Set(configs.map((c) => c.depth))).toEqual(new Set([1, 2, 3]));
    expect(new Set(configs.map((c) => c.activation))).toEqual(new Set(['relu', 'tanh']));
    for (const c of configs) {
      expect(c.batchSize).toBeGreaterThanOrEqual(64);
      expect(c.batchSize).toBeLessThanOrEqual(4096);
      expect(c.parametrization).toBe('mup');
    }
    // log-uniform: about half the batch sizes fall below the geometric mean 512
    const below = configs.filter((c) => c.batchSize < 512).length;
    expect(below).toBeGreaterThan(12);
    expect(below).toBeLessThan(38);
    expect(fam.build(a[0]!).meta.name).toBe(a[0]);
  });

  it('a fixed family is a family of one', () => {
    const fam = fixedFamily('mlp-mnist8-w32-d1');
    expect(fam.sample(Rng.from(1))).toBe('mlp-mnist8-w32-d1');
    expect(familyFromSpec({ type: 'fixed', task: 'mlp-mnist8-w32-d1' }).sample(Rng.from(2))).toBe('mlp-mnist8-w32-d1');
  });

  it('a masked-LM family samples NEZHA and absolute-position tasks over its ranges, reproducibly', () => {
    const spec = {
      type: 'mlm',
      widths: [16, 32],
      depth: { min: 1, max: 2 },
      headWidth: 8,
      seqLens: [16, 32],
      batchSize: { min: 8, max: 64 },
      positions: ['nezha', 'abs'],
    };
    const fam = familyFromSpec(spec);
    const a = Array.from({ length: 60 }, (_, i) => fam.sample(Rng.from(3).fork(i)));
    expect(a).toEqual(Array.from({ length: 60 }, (_, i) => familyFromSpec(spec).sample(Rng.from(3).fork(i))));
    const configs = a.map(parseMlmName);
    expect(new Set(configs.map((c) => c.width))).toEqual(new Set([16, 32]));
    expect(new Set(configs.map((c) => c.depth))).toEqual(new Set([1, 2]));
    expect(new Set(configs.map((c) => c.positions))).toEqual(new Set(['nezha', 'abs']));
    expect(new Set(configs.map((c) => c.seqLen))).toEqual(new Set([16, 32]));
    for (const c of configs) {
      expect(c.heads).toBe(c.width / 8);
      expect(c.batchSize).toBeGreaterThanOrEqual(8);
      expect(c.batchSize).toBeLessThanOrEqual(64);
      expect(c.parametrization).toBe('mup');
    }
    expect(fam.build(a[0]!).meta).toMatchObject({ name: a[0], family: 'mlm' });
    expect(() => familyFromSpec({ type: 'mlm', widths: [12], headWidth: 8 })).toThrow('task family spec: widths: 12 is not a multiple of headWidth 8');
  });

  it('a preference family samples every loss it names, without training anything to build a task', () => {
    const fam = familyFromSpec({
      type: 'preference',
      widths: [16],
      depth: { min: 1, max: 2 },
      seqLens: [24],
      batchSize: { min: 4, max: 16 },
      parametrization: 'sp',
    });
    const configs = Array.from({ length: 40 }, (_, i) => parsePreferenceName(fam.sample(Rng.from(5).fork(i))));
    expect(new Set(configs.map((c) => c.loss))).toEqual(new Set(['dpo', 'simpo', 'mipo']));
    expect(new Set(configs.map((c) => c.depth))).toEqual(new Set([1, 2]));
    for (const c of configs) expect([c.width, c.seqLen, c.parametrization]).toEqual([16, 24, 'sp']);
    // Building a task makes names and shapes only; the reference model is fitted (and cached) on first use.
    const cache = mkdtempSync(join(tmpdir(), 'lopt-family-cache-'));
    const saved = process.env['LOPT_CACHE_DIR'];
    process.env['LOPT_CACHE_DIR'] = cache;
    try {
      expect(fam.build(fam.sample(Rng.from(9))).meta.family).toBe('preference');
      expect(readdirSync(cache)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env['LOPT_CACHE_DIR'];
      else process.env['LOPT_CACHE_DIR'] = saved;
      rmSync(cache, { recursive: true, force: true });
    }
    expect(() => familyFromSpec({ type: 'preference', widths: [16], losses: ['ipo'] })).toThrow(/task family spec: losses\.0: .*dpo.*simpo.*mipo/);
  });

  it('bad specs name the field path and what is allowed', () => {
    expect(() => familyFromSpec({ type: 'mlp', widths: [] })).toThrow(/task family spec: widths: .*>=1/);
    expect(() => familyFromSpec({ type: 'mlp', widths: [32], depth: { min: 3, max: 1 } })).toThrow(/task family spec: depth: min must not exceed max/);
    expect(() => familyFromSpec({ type: 'mlp', widths: [32], activations: ['swish'] })).toThrow(/task family spec: activations.0: .*relu.*tanh.*gelu/);
    expect(() => familyFromSpec({ type: 'cnn' })).toThrow(/task family spec: type/);
    expect(() => familyFromSpec({ type: 'fixed', task: 'nope' })).toThrow(/unknown task 'nope'/);
    expect(() => familyFromSpec({ type: 'mlp', widths: [32], extra: 1 })).toThrow(/task family spec: .*extra/);
  });
});
