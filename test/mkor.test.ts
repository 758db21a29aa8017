// MKOR as an optimizer: the tasks' layer statistics (checked against the gradients they must add up
// to), whole steps against a float64 re-implementation of the authors' algorithm written here from
// their code (Mohammad-Mozaffari/mkor @3a0e3bb: statistics mkor.py 123–158, factor updates 386–400,
// preconditioning and rescale 204–258, then torch.optim.SGD), populations, leaks and bad input.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { mkor, mkorlamb } from '../src/optim/baselines/mkor.js';
import { scaleByMkor } from '../src/optim/mkor/scaleByMkor.js';
import { tidyTree } from '../src/tree/tidy.js';
import type { LayerSpec, LayerStatistics } from '../src/optim/layerStatistics.js';
import type { Optimizer, OptimizerState } from '../src/optim/optimizer.js';
import { disposeReplaced, disposeState, stateLeafPaths, stateLeaves, type StateTree } from '../src/tree/stateTree.js';
import type { Params } from '../src/tree/params.js';
import { lossAndGrads } from '../tasks/lossAndGrads.js';
import { taskFromName } from '../tasks/registry.js';
import type { Task } from '../tasks/types.js';
import { runBenchUnit } from '../src/evaluate/benchRun.js';
import { add, eye, inv, maxAbs, mul, outer, scale, worstRel, type Mat } from './helpers/matrix64.js';
import { refStep, type RefLayer } from './helpers/mkorReference.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

/** Member p of a [P, ...] tensor as nested float64 rows (rank 3 → a matrix per member). */
const memberMat = (t: tf.Tensor, p: number): Mat => {
  const [, r, c] = t.shape as [number, number, number];
  const v = t.dataSync();
  return Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => v[(p * r + i) * c + j]!));
};
const memberVec = (t: tf.Tensor, p: number): number[] => {
  const n = t.size / t.shape[0]!;
  return Array.from(t.dataSync().slice(p * n, (p + 1) * n));
};
const freeStatistics = (s: Record<string, LayerStatistics>) => tf.dispose(Object.values(s).flatMap((x) => [x.inputs, x.outputGrads]));

/** Per member, the kernel gradient as a matrix [fanIn, fanOut]. */
const kernelMat = (g: tf.Tensor, p: number): Mat => {
  const P = g.shape[0]!;
  const fanOut = g.shape[g.rank - 1]!;
  const rows = tf.reshape(g, [P, -1, fanOut]);
  const m = memberMat(rows, p);
  rows.dispose();
  return m;
};

describe('layer statistics reported by tasks', () => {
  /** For a dense layer, Σ rows xᵀ·dy = ∇W and Σ rows dy = ∇b: the statistics are the per-row factors of the gradients. */
  function checkDense(task: Task, seeds: number[]) {
    const params = task.init(seeds);
    const batch = task.batches('train', seeds).next();
    const r = task.lossGradsAndStatistics!(params, batch);
    const plain = lossAndGrads(task, params, batch);
    const [a, b] = [r.losses.dataSync(), plain.losses.dataSync()];
    a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThan(1e-5));
    const dense = task.layers!.filter((l) => l.kind === 'dense');
    expect(Object.keys(r.statistics).sort()).toEqual(task.layers!.map((l) => l.kernel).sort());
    for (const layer of dense) {
      const s = r.statistics[layer.kernel]!;
      for (let p = 0; p < seeds.length; p++) {
        const x = memberMat(s.inputs, p);
        const dy = memberMat(s.outputGrads, p);
        const fromRows = mul(
          x[0]!.map((_, i) => x.map((row) => row[i]!)),
          dy,
        );
        expect(worstRel(kernelMat(r.grads[layer.kernel]!, p), fromRows), `${layer.kernel} member ${p}`).toBeLessThan(2e-4);
        expect(worstRel(kernelMat(plain.grads[layer.kernel]!, p), fromRows), `${layer.kernel} vs lossAndGrads`).toBeLessThan(2e-4);
        if (layer.bias !== null) {
          const colSum = dy[0]!.map((_, j) => dy.reduce((sum, row) => sum + row[j]!, 0));
          expect(worstRel([memberVec(r.grads[layer.bias]!, p)], [colSum])).toBeLessThan(2e-4);
        }
      }
    }
    tf.dispose([r.losses, plain.losses, ...Object.values(r.grads), ...Object.values(plain.grads), ...Object.values(params), ...Object.values(batch)]);
    freeStatistics(r.statistics);
  }

  it('MLP: every layer, population of two, against the gradients', () => {
    const task = taskFromName('mlp-mnist8-w8-d2-relu-b16-mup');
    checkDense(task, [3, 4]); // first use: the dataset and lazily created kernels settle
    const before = tf.memory().numTensors;
    checkDense(task, [3, 4]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('transformer and masked LM: every linear layer (attention projections, MLP, readout)', () => {
    checkDense(taskFromName('transformer-mobydick-w16-d1-h2-t8-b2-mup'), [1, 2]);
    checkDense(taskFromName('mlm-mobydick-w16-d1-h2-t8-b2-nezha-sp'), [5]);
  });

  it('conv: the readout as a dense layer; conv rows are input patches and output gradients averaged over positions', () => {
    const task = taskFromName('conv-mnist8-w4-b4-sp');
    checkDense(task, [1, 2]);
    const seeds = [7, 8];
    const params = task.init(seeds);
    const batch = task.batches('train', seeds).next();
    const r = task.lossGradsAndStatistics!(params, batch);
    for (const [kernel, bias, stride] of [
      ['conv1/kernel', 'conv1/bias', 1],
      ['conv2/kernel', 'conv2/bias', 2],
    ] as const) {
      const s = r.statistics[kernel]!;
      const L = stride === 1 ? 64 : 16; // output positions of an 8×8 image
      for (let p = 0; p < 2; p++) {
        // Σ over positions of dy = L · (the row's mean over positions); its sum over rows is ∇b.
        const dy = memberMat(s.outputGrads, p);
        const want = dy[0]!.map((_, j) => L * dy.reduce((sum, row) => sum + row[j]!, 0));
        expect(worstRel([memberVec(r.grads[bias]!, p)], [want]), `${kernel} member ${p}`).toBeLessThan(2e-4);
      }
    }
    // conv1's rows from the images themselves: each 3×3 'same' patch (zero padded), averaged over the 64 positions.
    const x = batch['x']!.dataSync();
    const got = memberMat(r.statistics['conv1/kernel']!.inputs, 1);
    const B = 4;
    for (let b = 0; b < B; b++) {
      const want = new Array<number>(9).fill(0);
      for (let h = 0; h < 8; h++)
        for (let w = 0; w < 8; w++)
          for (let i = 0; i < 3; i++)
            for (let j = 0; j < 3; j++) {
              const [hh, ww] = [h + i - 1, w + j - 1];
              if (hh >= 0 && hh < 8 && ww >= 0 && ww < 8) want[i * 3 + j]! += x[(1 * B + b) * 64 + hh * 8 + ww]! / 64;
            }
      expect(worstRel([got[b]!], [want])).toBeLessThan(1e-5);
    }
    tf.dispose([r.losses, ...Object.values(r.grads), ...Object.values(params), ...Object.values(batch)]);
    freeStatistics(r.statistics);
  });
});

/** The scaleByMkor state's leaf for `kernel` and `part` (aInv, gInv, resetA, resetG). */
function factorLeaf(state: OptimizerState, kernel: string, part: string): tf.Tensor {
  const paths = stateLeafPaths(state.inner as StateTree);
  const i = paths.findIndex((p) => p.endsWith(`factors/${kernel}/${part}`));
  if (i < 0) throw new Error(`no ${kernel}/${part} in ${paths.join(', ')}`);
  return stateLeaves(state.inner as StateTree)[i] as tf.Tensor;
}

/** The authors' algorithm for one member, float64: their layout (W [out, in], bias last column), explicit inverses for the factors. */
class ReferenceMkor {
  private t = 0;
  private readonly layers = new Map<string, RefLayer>();
  private readonly buf = new Map<string, number[]>();
  constructor(
    private readonly specs: LayerSpec[],
    private readonly o: { lr: number; momentum: number; weightDecay: number; every: number; warmup: number },
  ) {}

  /** One step: the updates to add, by name (the member's own gradients, parameters and statistics rows). */
  step(
    grads: Record<string, number[]>,
    params: Record<string, number[]>,
    stats: Record<string, { x: Mat; dy: Mat }> | null,
    shapes: Record<string, number[]>,
  ): Record<string, number[]> {
    const clip = (v: number) => Math.min(100, Math.max(-100, v));
    const refresh = this.t % this.o.every === 0 || this.t < this.o.warmup;
    const pre: Record<string, number[]> = { ...grads };
    for (const spec of this.specs) {
      const [fanIn, fanOut] = [shapes[spec.kernel]!.slice(0, -1).reduce((a, b) => a * b, 1), shapes[spec.kernel]!.at(-1)!];
      const withBias = spec.bias !== null;
      let s = this.layers.get(spec.kernel) ?? { A: eye(fanIn + (withBias ? 1 : 0)), G: eye(fanOut), rA: true, rG: true };
      if (refresh) {
        const { x, dy } = stats![spec.kernel]!;
        const N = x.length;
        const a = Array.from({ length: fanIn }, (_, i) => x.reduce((sum, row) => sum + clip(row[i]!), 0) / N);
        if (withBias) a.push(1);
        const g = Array.from({ length: fanOut }, (_, j) => dy.reduce((sum, row) => sum + clip(N * row[j]!), 0) / N);
        s = refStep(s, a, g);
        this.layers.set(spec.kernel, s);
      }
      // Gm [out, in (+1)] from our [in, out] kernel gradient and the bias.
      const gw = grads[spec.kernel]!;
      const gb = withBias ? grads[spec.bias!]! : [];
      const Gm: Mat = Array.from({ length: fanOut }, (_, o) => [
        ...Array.from({ length: fanIn }, (_, i) => gw[i * fanOut + o]!),
        ...(withBias ? [gb[o]!] : []),
      ]);
      const Pm = mul(mul(s.G, Gm), s.A);
      const norm = (v: number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
      const pw = Pm.map((row) => row.slice(0, fanIn));
      const pb = withBias ? Pm.map((row) => row[fanIn]!) : [];
      const fix = (norm(gw) + norm(gb)) / (norm(pw.flat()) + norm(pb));
      if (!Number.isNaN(fix)) {
        pre[spec.kernel] = Array.from({ length: fanIn * fanOut }, (_, k) => pw[k % fanOut]![Math.floor(k / fanOut)]! * fix);
        if (withBias) pre[spec.bias!] = pb.map((x) => x * fix);
      }
    }
    // torch.optim.SGD: d = g' + wd·w; buf = μ·buf + d (buf = d at the first step); w −= lr·buf.
    const out: Record<string, number[]> = {};
    for (const [name, g] of Object.entries(pre)) {
      const d = g.map((x, k) => x + this.o.weightDecay * params[name]![k]!);
      const prev = this.buf.get(name);
      const b = prev === undefined ? d : d.map((x, k) => this.o.momentum * prev[k]! + x);
      this.buf.set(name, b);
      out[name] = b.map((x) => -this.o.lr * x);
    }
    this.t++;
    return out;
  }
}

describe('mkor against the float64 reference', () => {
  it('12 steps of an MLP population (factors refreshed at 0, 1, 3, 6, 9): updates, factors, and the inverse of the decayed factor', () => {
    const task = taskFromName('mlp-mnist8-w8-d2-relu-b16-sp');
    const seeds = [11, 12];
    const P = seeds.length;
    const layers = [...task.layers!];
    const o = { lr: 0.05, momentum: 0.9, weightDecay: 1e-3, every: 3, warmup: 2 };
    const opt = mkor({
      learningRate: o.lr,
      momentum: o.momentum,
      weightDecay: o.weightDecay,
      updateEvery: o.every,
      warmupSteps: o.warmup,
      layers,
      population: P,
    });
    const refs = seeds.map(() => new ReferenceMkor(layers, o));
    let params = task.init(seeds);
    let state = opt.init(params);
    const stream = task.batches('train', seeds);
    let refreshes = 0;
    for (let t = 0; t < 12; t++) {
      const batch = stream.next();
      const wants = opt.wantsLayerStatistics(state);
      expect(wants).toBe(t % 3 === 0 || t < 2);
      const r = wants ? task.lossGradsAndStatistics!(params, batch) : { ...lossAndGrads(task, params, batch), statistics: undefined };
      const before = layers.map((l) => memberMat(factorLeaf(state, l.kernel, 'aInv'), 0));
      const { updates, state: next } = opt.update(r.grads, state, params, r.statistics ? { layerStatistics: r.statistics } : {});
      for (let p = 0; p < P; p++) {
        const own = (tree: Params) => Object.fromEntries(Object.entries(tree).map(([n, v]) => [n, memberVec(v, p)]));
        const stats = r.statistics
          ? Object.fromEntries(Object.entries(r.statistics).map(([n, s]) => [n, { x: memberMat(s.inputs, p), dy: memberMat(s.outputGrads, p) }]))
          : null;
        const want = refs[p]!.step(own(r.grads), own(params), stats, task.shapes as Record<string, number[]>);
        for (const [name, u] of Object.entries(updates)) {
          expect(worstRel([memberVec(u, p)], [want[name]!]), `step ${t} member ${p} ${name}`).toBeLessThan(2e-4);
        }
      }
      // At a refresh past the first, A⁻¹ is the inverse of the decayed factor plus a aᵀ: A⁻¹·(inv(0.95F + 0.05I) + a aᵀ) = I.
      if (wants && t > 0) {
        refreshes++;
        layers.forEach((l, i) => {
          const x = memberMat(r.statistics![l.kernel]!.inputs, 0);
          const a = [...x[0]!.map((_, k) => x.reduce((s, row) => s + row[k]!, 0) / x.length), 1];
          const factor = add(inv(add(scale(before[i]!, 0.95), scale(eye(a.length), 0.05))), outer(a, a));
          expect(maxAbs(add(mul(memberMat(factorLeaf(next, l.kernel, 'aInv'), 0), factor), eye(a.length), -1)), `step ${t} ${l.kernel}`).toBeLessThan(2e-3);
        });
      }
      const nextParams: Params = {};
      for (const [n, v] of Object.entries(params)) nextParams[n] = tf.add(v, updates[n]!);
      tf.dispose([...Object.values(params), ...Object.values(updates), ...Object.values(r.grads), r.losses, ...Object.values(batch)]);
      if (r.statistics) freeStatistics(r.statistics);
      disposeReplaced(state.inner, next.inner);
      params = nextParams;
      state = next;
    }
    expect(refreshes).toBe(4);
    // The factors moved away from I: preconditioning did something.
    expect(maxAbs(add(memberMat(factorLeaf(state, 'layer1/kernel', 'gInv'), 1), eye(8), -1))).toBeGreaterThan(0.01);
    tf.dispose(Object.values(params));
    disposeState(state.inner);
  });
});

describe('mkor as a population, over many steps, and on bad input', () => {
  const task = taskFromName('mlp-mnist8-w8-d1-relu-b8-mup');
  const layers = () => task.layers!.map((l) => ({ ...l }));

  /** Trains `opt` for `steps` steps from `seeds`; returns the final parameters (caller disposes). */
  function train(opt: Optimizer, seeds: number[], steps: number): Params {
    let params = task.init(seeds);
    let state = opt.init(params);
    const stream = task.batches('train', seeds);
    for (let t = 0; t < steps; t++) {
      const batch = stream.next();
      const r = opt.wantsLayerStatistics(state) ? task.lossGradsAndStatistics!(params, batch) : { ...lossAndGrads(task, params, batch), statistics: undefined };
      ({ params, state } = opt.step(params, r.grads, state, { loss: r.losses, ...(r.statistics ? { layerStatistics: r.statistics } : {}) }));
      tf.dispose([...Object.values(r.grads), r.losses, ...Object.values(batch)]);
      if (r.statistics) freeStatistics(r.statistics);
    }
    disposeState(state.inner);
    return params;
  }

  it.each([
    ['mkor', (P: number) => mkor({ learningRate: 0.05, layers: layers(), updateEvery: 2, weightDecay: 1e-4, population: P })],
    [
      'mkorlamb',
      (P: number) => mkorlamb({ learningRate: 0.01, layers: layers(), updateEvery: 2, weightDecay: 0.01, excludeFromWeightDecay: ['bias$'], population: P }),
    ],
  ] as const)('%s: two stacked members step as two separate runs', (_name, make) => {
    const both = train(make(2), [1, 2], 9);
    const singles = [train(make(1), [1], 9), train(make(1), [2], 9)];
    for (const [name, t] of Object.entries(both)) {
      for (let p = 0; p < 2; p++) expect(worstRel([memberVec(t, p)], [memberVec(singles[p]![name]!, 0)]), `${name} member ${p}`).toBeLessThan(1e-4);
    }
    tf.dispose([...Object.values(both), ...singles.flatMap((s) => Object.values(s))]);
  });

  it('no tensor leaks over 300 steps with statistics every 10 (the bench runner), and the loss goes down', async () => {
    const input = {
      task: task.meta.name,
      steps: 30,
      optimizer: { kind: 'baseline' as const, name: 'mkor', optimizer: 'mkor', lrs: [0.3, 1] },
      seeds: [1],
      evalBatches: 1,
    };
    await runBenchUnit(input); // lazily created scalars and kernels settle
    const before = tf.memory().numTensors;
    const out = await runBenchUnit({ ...input, steps: 300 });
    expect(tf.memory().numTensors).toBe(before);
    const loss = (t: number, m: number) => out.losses[t * 2 + m]!;
    // Batches of 8 are noisy: the mean of the last 50 steps against the first loss.
    const tail = (m: number) => Array.from({ length: 50 }, (_, k) => loss(250 + k, m)).reduce((a, b) => a + b) / 50;
    for (let m = 0; m < 2; m++) expect(tail(m)).toBeLessThan(0.7 * loss(0, m));
  });

  it('refuses a refresh step without statistics, unknown layers, wrong bias shapes and parameters named twice', () => {
    const opt = mkor({ learningRate: 0.1, layers: layers(), population: 1 });
    const params = task.init([1]);
    const state = opt.init(params);
    const grads = Object.fromEntries(Object.entries(params).map(([n, v]) => [n, tf.onesLike(v)]));
    expect(() => opt.update(grads, state, params)).toThrow(/update 0 refreshes the factors.*needs context.layerStatistics/);
    expect(() => mkor({ learningRate: 0.1, layers: [{ kernel: 'nope', bias: null, kind: 'dense' }] }).init(params)).toThrow(
      /layer kernel 'nope' is not a parameter/,
    );
    expect(() => mkor({ learningRate: 0.1, layers: [{ kernel: 'layer0/kernel', bias: 'readout/bias', kind: 'dense' }], population: 1 }).init(params)).toThrow(
      /bias 'readout\/bias' of layer 'layer0\/kernel' has shape \[1,10\], expected \[1,8\]/,
    );
    expect(() => mkor({ learningRate: 0.1, layers: [{ kernel: 'layer0/kernel', bias: null, kind: 'conv' }], population: 1 }).init(params)).toThrow(
      /is conv, so its kernel must be/,
    );
    expect(() =>
      mkor({
        learningRate: 0.1,
        layers: [
          { kernel: 'layer0/kernel', bias: 'layer0/bias', kind: 'dense' },
          { kernel: 'readout/kernel', bias: 'layer0/bias', kind: 'dense' },
        ],
      }),
    ).toThrow(/names parameter 'layer0\/bias' twice/);
    expect(() => mkor({ learningRate: 0.1, layers: [] })).toThrow(/option 'layers' must name at least one layer/);
    expect(() => mkor({ learningRate: 0.1, layers: [{ kernel: 'a', bias: null, kind: 'lstm' as 'dense' }] })).toThrow(/option 'layers'.*'dense' or 'conv'/);
    tf.dispose([...Object.values(params), ...Object.values(grads)]);
    disposeState(state.inner);
  });

  it('a task without layer statistics is refused before any work', async () => {
    await expect(
      runBenchUnit({
        task: 'quadratic-d10-k10',
        steps: 3,
        optimizer: { kind: 'baseline', name: 'mkor', optimizer: 'mkor', lrs: [0.1] },
        seeds: [1],
        evalBatches: 1,
      }),
    ).rejects.toThrow(/mkor needs a task that reports its layers' statistics/);
  });
});

describe('MKOR-H: the switch to first order (our rule; the paper publishes none)', () => {
  /** The rule in float64: the first step at which a member switches, or null. */
  function referenceSwitchStep(losses: number[], window: number, beta: number): number | null {
    let smoothed = 0;
    let [lastCheck, start] = [0, 0];
    for (let t = 0; t < losses.length; t++) {
      smoothed = t === 0 ? losses[0]! : 0.9 * smoothed + 0.1 * losses[t]!;
      if (t % window !== 0 || t < window) continue;
      if (t === window) {
        [lastCheck, start] = [smoothed, smoothed];
        continue;
      }
      if ((lastCheck - smoothed) / window < (beta * (start - smoothed)) / (t - window)) return t;
      lastCheck = smoothed;
    }
    return null;
  }

  it('a member whose loss flattens switches at the check the float64 rule names and from then on gets its raw gradients; one still improving does not', () => {
    const task = taskFromName('mlp-mnist8-w8-d1-relu-b8-sp');
    const precondition = scaleByMkor(task.layers!, { every: 5, warmupSteps: 0 }, true, { window: 10, beta: 0.1 });
    const steps = 80;
    // Member 0: a fast fall that stops at step 30 (a knee); member 1: a steady linear fall.
    const losses = [Array.from({ length: steps }, (_, t) => (t < 30 ? 3 - 0.08 * t : 0.6)), Array.from({ length: steps }, (_, t) => 3 - 0.02 * t)];
    const expected = losses.map((l) => referenceSwitchStep(l, 10, 0.1));
    expect(expected[0]).not.toBeNull();
    expect(expected[1]).toBeNull();
    const params = task.init([1, 2]);
    const batch = task.batches('train', [1, 2]).next();
    const r = task.lossGradsAndStatistics!(params, batch);
    let state = precondition.init(params);
    for (let t = 0; t < steps; t++) {
      const loss = tf.tensor1d([losses[0]![t]!, losses[1]![t]!]);
      const next = tidyTree(() => precondition.update(r.grads, state, params, { loss, layerStatistics: r.statistics }));
      const on = t >= expected[0]!;
      expect(Array.from(next.state.hybrid!.switched.dataSync()), `step ${t}`).toEqual([on ? 1 : 0, 0]);
      if (t >= 5) {
        // Past the first Sherman–Morrison update the preconditioned gradient differs from the raw one, unless switched.
        for (const [name, u] of Object.entries(next.updates)) {
          const differs = (p: number) => worstRel([memberVec(u, p)], [memberVec(r.grads[name]!, p)]) > 1e-4;
          expect(differs(0), `step ${t} ${name} member 0`).toBe(!on);
          expect(differs(1), `step ${t} ${name} member 1`).toBe(true);
        }
      }
      tf.dispose([loss, ...Object.values(next.updates).filter((u) => !Object.values(r.grads).includes(u))]);
      disposeReplaced(state as unknown as StateTree, next.state as unknown as StateTree);
      state = next.state;
    }
    tf.dispose([r.losses, ...Object.values(r.grads), ...Object.values(params), ...Object.values(batch)]);
    freeStatistics(r.statistics);
    disposeState(state as unknown as StateTree);
  });
});
