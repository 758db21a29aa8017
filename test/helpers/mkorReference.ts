// MKOR's factor updates in float64, written from the authors' code (Mohammad-Mozaffari/mkor
// @3a0e3bb, mkor/mkor.py 330–374 and mkor/utils/factors.py 227–233) with explicit inverses: the
// reference the factor and optimizer tests check against.
import { add, eye, inv, maxAbs, outer, scale, type Mat } from './matrix64.js';

/** The reference's update of one inverse factor: inv(inv(0.95F + 0.05I) + v vᵀ), by explicit inverses. */
export function refUpdate(F: Mat, v: number[]): Mat {
  const M = add(scale(F, 0.95), scale(eye(F.length), 0.05));
  return inv(add(inv(M), outer(v, v)));
}

export interface RefLayer {
  A: Mat;
  G: Mat;
  rA: boolean;
  rG: boolean;
}

/** mkor.py's per-layer update step (A before G, a trip flags both, a reset discards the vector). */
export function refStep(s: RefLayer, a: number[], g: number[]): RefLayer {
  let { A, G, rA, rG } = s;
  if (rA) {
    A = eye(A.length);
    rA = false;
  } else {
    A = refUpdate(A, a);
    if (maxAbs(A) > 2) rA = rG = true;
  }
  if (rG) {
    G = eye(G.length);
    rG = false;
  } else {
    G = refUpdate(G, g);
    if (maxAbs(G) > 2) rA = rG = true;
  }
  return { A, G, rA, rG };
}
