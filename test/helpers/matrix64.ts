// Float64 dense matrices for reference re-implementations in tests (MKOR's factors).
export type Mat = number[][];

export const eye = (d: number): Mat => Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
export const mul = (a: Mat, b: Mat): Mat => a.map((row) => b[0]!.map((_, j) => row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
export const tr = (a: Mat): Mat => a[0]!.map((_, j) => a.map((row) => row[j]!));
export const add = (a: Mat, b: Mat, s = 1): Mat => a.map((row, i) => row.map((x, j) => x + s * b[i]![j]!));
export const scale = (a: Mat, s: number): Mat => a.map((row) => row.map((x) => x * s));
export const maxAbs = (a: Mat): number => Math.max(...a.flat().map(Math.abs));
export const outer = (u: number[], v: number[]): Mat => u.map((x) => v.map((y) => x * y));

/** Gauss–Jordan inverse with partial pivoting. */
export function inv(a: Mat): Mat {
  const d = a.length;
  const m = a.map((row, i) => [...row, ...eye(d)[i]!]);
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const pivot = m[c]![c]!;
    m[c] = m[c]!.map((x) => x / pivot);
    for (let r = 0; r < d; r++) if (r !== c) m[r] = m[r]!.map((x, j) => x - m[r]![c]! * m[c]![j]!);
  }
  return m.map((row) => row.slice(d));
}

/** The largest |difference| over the largest |entry| of `want`. */
export const worstRel = (got: Mat, want: Mat): number => maxAbs(add(got, want, -1)) / Math.max(maxAbs(want), 1e-12);
