// Small dense products: four rows of C at a time, 32 columns (two 16-float vectors) per pass, so
// each loaded row of B serves four rows of A. Column tails go through a scalar loop.
#include "gemm.h"

#include <string.h>

typedef float vf __attribute__((vector_size(64)));

static inline vf load(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline vf splat(float a) { return (vf){a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a}; }

void lopt_gemm(int M, int N, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B, ptrdiff_t ldb, float *C,
               ptrdiff_t ldc, int accumulate) {
  int m = 0;
  for (; m + 4 <= M; m += 4) {
    const float *a0 = A + (ptrdiff_t)m * sam, *a1 = a0 + sam, *a2 = a1 + sam, *a3 = a2 + sam;
    float *c0 = C + (ptrdiff_t)m * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    int n = 0;
    for (; n + 32 <= N; n += 32) {
      vf r00 = splat(0), r01 = splat(0), r10 = splat(0), r11 = splat(0), r20 = splat(0), r21 = splat(0), r30 = splat(0), r31 = splat(0);
      for (int k = 0; k < K; k++) {
        const float *b = B + (ptrdiff_t)k * ldb + n;
        const vf b0 = load(b), b1 = load(b + 16);
        const float x0 = a0[k * sak], x1 = a1[k * sak], x2 = a2[k * sak], x3 = a3[k * sak];
        r00 += x0 * b0, r01 += x0 * b1;
        r10 += x1 * b0, r11 += x1 * b1;
        r20 += x2 * b0, r21 += x2 * b1;
        r30 += x3 * b0, r31 += x3 * b1;
      }
      if (accumulate) {
        r00 += load(c0 + n), r01 += load(c0 + n + 16), r10 += load(c1 + n), r11 += load(c1 + n + 16);
        r20 += load(c2 + n), r21 += load(c2 + n + 16), r30 += load(c3 + n), r31 += load(c3 + n + 16);
      }
      store(c0 + n, r00), store(c0 + n + 16, r01), store(c1 + n, r10), store(c1 + n + 16, r11);
      store(c2 + n, r20), store(c2 + n + 16, r21), store(c3 + n, r30), store(c3 + n + 16, r31);
    }
    for (; n + 16 <= N; n += 16) {
      vf r0 = splat(0), r1 = splat(0), r2 = splat(0), r3 = splat(0);
      for (int k = 0; k < K; k++) {
        const vf b = load(B + (ptrdiff_t)k * ldb + n);
        r0 += a0[k * sak] * b, r1 += a1[k * sak] * b, r2 += a2[k * sak] * b, r3 += a3[k * sak] * b;
      }
      if (accumulate) r0 += load(c0 + n), r1 += load(c1 + n), r2 += load(c2 + n), r3 += load(c3 + n);
      store(c0 + n, r0), store(c1 + n, r1), store(c2 + n, r2), store(c3 + n, r3);
    }
    for (; n < N; n++) {
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int k = 0; k < K; k++) {
        const float b = B[(ptrdiff_t)k * ldb + n];
        s0 += a0[k * sak] * b, s1 += a1[k * sak] * b, s2 += a2[k * sak] * b, s3 += a3[k * sak] * b;
      }
      if (accumulate) s0 += c0[n], s1 += c1[n], s2 += c2[n], s3 += c3[n];
      c0[n] = s0, c1[n] = s1, c2[n] = s2, c3[n] = s3;
    }
  }
  for (; m < M; m++) {
    const float *a = A + (ptrdiff_t)m * sam;
    float *c = C + (ptrdiff_t)m * ldc;
    for (int n = 0; n < N; n++) {
      float s = 0;
      for (int k = 0; k < K; k++) s += a[k * sak] * B[(ptrdiff_t)k * ldb + n];
      c[n] = accumulate ? c[n] + s : s;
    }
  }
}
