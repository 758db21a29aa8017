import { describe, expect, it } from 'vitest';
import { Rng } from '../src/random/rng.js';
import { familyFromSpec, fixedFamily } from '../tasks/families.js';
import { parseMlpName } from '../tasks/mlp.js';

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

  it('bad specs name the field path and what is allowed', () => {
    expect(() => familyFromSpec({ type: 'mlp', widths: [] })).toThrow(/task family spec: widths: .*>=1/);
    expect(() => familyFromSpec({ type: 'mlp', widths: [32], depth: { min: 3, max: 1 } })).toThrow(/task family spec: depth: min must not exceed max/);
    expect(() => familyFromSpec({ type: 'mlp', widths: [32], activations: ['swish'] })).toThrow(/task family spec: activations.0: .*relu.*tanh.*gelu/);
    expect(() => familyFromSpec({ type: 'cnn' })).toThrow(/task family spec: type/);
    expect(() => familyFromSpec({ type: 'fixed', task: 'nope' })).toThrow(/unknown task 'nope'/);
    expect(() => familyFromSpec({ type: 'mlp', widths: [32], extra: 1 })).toThrow(/task family spec: .*extra/);
  });
});
