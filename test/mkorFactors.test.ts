// MKOR's factor updates and preconditioning against a float64 re-implementation written here from
// the authors' code (Mohammad-Mozaffari/mkor @3a0e3bb, mkor/mkor.py and mkor/utils/factors.py), in
// their PyTorch layout (W [out, in], the bias as the last column), with explicit matrix inverses.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { Rng } from '../src/random/rng.js';
import { add, eye, inv, maxAbs, mul, scale, tr, worstRel, type Mat } from './helpers/matrix64.js';
import { refStep, refUpdate, type RefLayer } from './helpers/mkorReference.js';
import { initialFactors, preconditionDense, shermanMorrisonDecayed, updateFactors, type LayerFactors } from '../src/optim/mkor/factors.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

const matsOf = (t: tf.Tensor): Mat[] => {
  const [P, r, c] = t.shape as [number, number, number];
  const v = t.dataSync();
  return Array.from({ length: P }, (_, p) => Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => v[(p * r + i) * c + j]!)));
};

describe('MKOR factors', () => {
  const rng = Rng.from('mkor-factors');
  const vec = (n: number, s: number) => Array.from({ length: n }, () => rng.normal() * s);

  it('one decayed Sherman–Morrison update is the inverse of the decayed factor plus v vᵀ', () => {
    const d = 5;
    // A symmetric positive-definite start with eigenvalues ≤ 1, as the factors stay.
    const B = Array.from({ length: d }, () => vec(d, 0.3));
    const F = inv(add(eye(d), mul(B, tr(B))));
    const v = vec(d, 1.5);
    const got = shermanMorrisonDecayed(tf.tensor3d(F.flat(), [1, d, d]), tf.tensor2d([v], [1, d]));
    expect(worstRel(matsOf(got)[0]!, refUpdate(F, v))).toBeLessThan(1e-5);
    got.dispose();
  });

  it('over several update steps, per member, A⁻¹ and G⁻¹ equal the float64 reference and stay symmetric', () => {
    const [P, aSize, gSize] = [2, 4, 3];
    let f: LayerFactors = initialFactors(P, aSize, gSize);
    let ref: RefLayer[] = Array.from({ length: P }, () => ({ A: eye(aSize), G: eye(gSize), rA: true, rG: true }));
    for (let step = 0; step < 6; step++) {
      const a = Array.from({ length: P }, () => [...vec(aSize - 1, 1), 1]); // batch-mean augmented input
      const g = Array.from({ length: P }, () => vec(gSize, 2));
      const next = updateFactors(f, tf.tensor2d(a), tf.tensor2d(g));
      tf.dispose(Object.values(f));
      f = next;
      ref = ref.map((r, p) => refStep(r, a[p]!, g[p]!));
      const [As, Gs] = [matsOf(f.aInv), matsOf(f.gInv)];
      for (let p = 0; p < P; p++) {
        expect(worstRel(As[p]!, ref[p]!.A), `step ${step} member ${p} A`).toBeLessThan(1e-5);
        expect(worstRel(Gs[p]!, ref[p]!.G), `step ${step} member ${p} G`).toBeLessThan(1e-5);
        expect(worstRel(As[p]!, tr(As[p]!))).toBeLessThan(1e-6);
      }
      expect(Array.from(f.resetA.dataSync())).toEqual(ref.map((r) => (r.rA ? 1 : 0)));
      expect(Array.from(f.resetG.dataSync())).toEqual(ref.map((r) => (r.rG ? 1 : 0)));
    }
    // Past the first step the factors moved away from I (the vectors were used).
    expect(maxAbs(add(matsOf(f.aInv)[0]!, eye(aSize), -1))).toBeGreaterThan(0.05);
    tf.dispose(Object.values(f));
  });

  it('a factor beyond the threshold flags both factors of its member; the next update resets them to I and discards its vectors', () => {
    const [aSize, gSize] = [3, 2];
    // Member 0 starts with a large A⁻¹ entry (as fp16 overflow would make), member 1 is normal.
    const bigA = add(eye(aSize), [
      [0, 4, 0],
      [4, 0, 0],
      [0, 0, 0],
    ]);
    const start: RefLayer[] = [
      { A: bigA, G: eye(gSize), rA: false, rG: false },
      { A: eye(aSize), G: eye(gSize), rA: false, rG: false },
    ];
    let f: LayerFactors = {
      aInv: tf.tensor3d([...bigA.flat(), ...eye(aSize).flat()], [2, aSize, aSize]),
      gInv: tf.tensor3d([...eye(gSize).flat(), ...eye(gSize).flat()], [2, gSize, gSize]),
      resetA: tf.zeros([2]),
      resetG: tf.zeros([2]),
    };
    let ref = start;
    for (let step = 0; step < 3; step++) {
      const a = [vec(aSize, 0.5), vec(aSize, 0.5)];
      const g = [vec(gSize, 0.5), vec(gSize, 0.5)];
      const next = updateFactors(f, tf.tensor2d(a), tf.tensor2d(g));
      tf.dispose(Object.values(f));
      f = next;
      ref = ref.map((r, p) => refStep(r, a[p]!, g[p]!));
      expect(Array.from(f.resetA.dataSync()), `step ${step}`).toEqual(ref.map((r) => (r.rA ? 1 : 0)));
      expect(Array.from(f.resetG.dataSync()), `step ${step}`).toEqual(ref.map((r) => (r.rG ? 1 : 0)));
      matsOf(f.aInv).forEach((A, p) => expect(worstRel(A, ref[p]!.A), `step ${step} member ${p}`).toBeLessThan(1e-5));
      matsOf(f.gInv).forEach((G, p) => expect(worstRel(G, ref[p]!.G), `step ${step} member ${p}`).toBeLessThan(1e-5));
    }
    // The trip happened and was handled: member 0's A⁻¹ was reset to I on the way.
    expect(maxAbs(matsOf(f.aInv)[0]!)).toBeLessThanOrEqual(1 + 1e-6);
    tf.dispose(Object.values(f));
  });
});

describe('MKOR preconditioning', () => {
  const rng = Rng.from('mkor-precondition');
  const mat = (r: number, c: number, s = 1): Mat => Array.from({ length: r }, () => Array.from({ length: c }, () => rng.normal() * s));
  const spd = (d: number): Mat => {
    const B = mat(d, d, 0.4);
    return inv(add(eye(d), mul(B, tr(B))));
  };
  const frob = (m: Mat) => Math.sqrt(m.flat().reduce((s, x) => s + x * x, 0));

  /** mkor.py in PyTorch layout: P = G⁻¹·[∇W | ∇b]·A⁻¹, rescaled by (‖∇W‖ + ‖∇b‖)/(‖P_W‖ + ‖P_b‖). */
  function refPrecondition(gW: Mat /* [out, in] */, gb: number[] | null, A: Mat, G: Mat): { W: Mat; b: number[] | null } {
    const Gm = gb === null ? gW : gW.map((row, i) => [...row, gb[i]!]);
    const Pm = mul(mul(G, Gm), A);
    const n = gW[0]!.length;
    const PW = Pm.map((row) => row.slice(0, n));
    const Pb = gb === null ? null : Pm.map((row) => row[n]!);
    const fix = (frob(gW) + (gb === null ? 0 : Math.hypot(...gb))) / (frob(PW) + (Pb === null ? 0 : Math.hypot(...Pb)));
    if (Number.isNaN(fix)) return { W: gW, b: gb };
    return { W: scale(PW, fix), b: Pb === null ? null : Pb.map((x) => x * fix) };
  }

  it.each([
    ['with a bias', true],
    ['without a bias', false],
  ] as const)('equals the reference %s (our [in, out] layout is its transpose), per member', (_, withBias) => {
    const [P, n, out] = [2, 4, 3];
    const aSize = withBias ? n + 1 : n;
    const cases = Array.from({ length: P }, () => ({ W: mat(n, out), b: withBias ? mat(1, out)[0]! : null, A: spd(aSize), G: spd(out) }));
    const got = preconditionDense(
      tf.tensor3d(
        cases.flatMap((c) => c.W.flat()),
        [P, n, out],
      ),
      withBias ? tf.tensor2d(cases.map((c) => c.b!)) : null,
      {
        aInv: tf.tensor3d(
          cases.flatMap((c) => c.A.flat()),
          [P, aSize, aSize],
        ),
        gInv: tf.tensor3d(
          cases.flatMap((c) => c.G.flat()),
          [P, out, out],
        ),
      },
    );
    const Ws = matsOf(got.kernel);
    const bs = got.bias ? (got.bias.arraySync() as number[][]) : null;
    cases.forEach((c, p) => {
      const want = refPrecondition(tr(c.W), c.b, c.A, c.G);
      expect(worstRel(Ws[p]!, tr(want.W))).toBeLessThan(1e-5);
      if (withBias) expect(worstRel([bs![p]!], [want.b!])).toBeLessThan(1e-5);
      // The rescale keeps the raw gradient's size (the sum of the two norms), not its direction.
      const size = frob(Ws[p]!) + (bs ? Math.hypot(...bs[p]!) : 0);
      expect(size / (frob(c.W) + (c.b ? Math.hypot(...c.b) : 0))).toBeCloseTo(1, 5);
      expect(worstRel(Ws[p]!, c.W)).toBeGreaterThan(1e-2);
    });
    tf.dispose([got.kernel, got.bias ?? []]);
  });

  it('a zero gradient (fix = 0/0) passes through unchanged, and identity factors change nothing', () => {
    const [n, out] = [3, 2];
    const zero = preconditionDense(tf.zeros([1, n, out]), tf.zeros([1, out]), {
      aInv: initialFactors(1, n + 1, out).aInv,
      gInv: initialFactors(1, n + 1, out).gInv,
    });
    expect(Array.from(zero.kernel.dataSync()).every((x) => x === 0)).toBe(true);
    const W = mat(n, out);
    const same = preconditionDense(tf.tensor3d(W.flat(), [1, n, out]), null, { aInv: initialFactors(1, n, out).aInv, gInv: initialFactors(1, n, out).gInv });
    expect(worstRel(matsOf(same.kernel)[0]!, W)).toBeLessThan(1e-6);
    tf.dispose([zero.kernel, zero.bias ?? [], same.kernel]);
  });
});
