// The fused per-parameter learned-optimizer step (μLO / AdafacMLPLOpt, MLPLOpt, and VeLO's
// per-parameter MLP), over a population [P, N] per tensor, with no [P, C, N] intermediate.
//
// Semantics are those of src/lopt/features.ts + perParamMlp.ts + learnedTransform.ts (the tfjs-ops
// reference path, itself tested against a float64 re-implementation of learned_optimization):
//   accumulators (old → new) → 28 (adafactor), 30 (velo) or 2+K (momentum) channels → per-channel
//   x·rsqrt(1e-5 + mean(x²)) folded into the first layer's weights → MLP C+G → H → H → 2 with the
//   G per-member global features (time, fraction of training) folded into the first bias →
//   update = −stepMult·mupScale·d·exp(expMult·m).
// VeLO (src/lopt/velo/veloTransform.ts + veloNative.ts) calls it once per tensor, with that
// tensor's interpolated MLP per member and its per-member step scale folded into the direction
// output, and gradClip = 1000.
//
// Work is split into fixed blocks of BLOCK parameters; per-block partial sums are added in block
// order, so the result does not depend on the number of threads.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perParamStep.h"

#define BLOCK 64
#define MAX_CHANNELS 64
#define SMALL_HIDDEN 64
// Below this many blocks a pass runs on the calling thread alone (waking a team costs more).
#define MIN_PARALLEL_BLOCKS 8

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

static inline vf relu_v(vf v) { return (vf)((vi)v & (v > 0)); }

static inline vf splat(float x) { return (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

static inline vf select_v(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

// e^x on 16 lanes, within 1 ulp of glibc's expf (checked over [−110, 90] in 1e-4 steps): x = n·ln2 + r
// with |r| ≤ ln2/2 (Cody–Waite), e^r by Cephes' degree-7 polynomial, 2^n applied in two halves (so
// that n = ±128 and gradual underflow need no special case); +inf above 88.7228…, 0 below
// −103.972…, NaN stays NaN.
static inline vf exp_v(vf x) {
  const vf hi = splat(88.72283935546875f), lo = splat(-103.97207641601562f);
  const vi over = x > hi, under = x < lo;
  const vf xc = select_v(over | under, splat(0.0f), x);
  const vf shifter = splat(12582912.0f);  // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
  const vf t = xc * splat(1.44269504088896341f) + shifter;
  const vf n = t - shifter;
  const vi ni = (vi)t - (vi)shifter;
  const vf r = (xc - n * splat(0.693359375f)) + n * splat(2.12194440e-4f);
  vf p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  vf y = p * (r * r) + r + splat(1.0f);
  const vi n1 = ni >> 1, n2 = ni - n1;
  y = y * (vf)((n1 + 127) << 23) * (vf)((n2 + 127) << 23);
  y = select_v(over, splat(__builtin_inff()), y);
  return select_v(under, splat(0.0f), y);
}

// dst[j] = src[j] for j < count (a full block inlined as vector moves, not a library call).
static inline void copy_block(float *restrict dst, const float *restrict src, int count) {
  if (count == BLOCK) __builtin_memcpy(dst, src, sizeof(float) * BLOCK);
  else memcpy(dst, src, sizeof(float) * (size_t)count);
}

static inline float rsqrtf_(float x) { return 1.0f / sqrtf(x); }

static inline float ema(float old, float x, float beta, float oneMinus) { return old * beta + x * oneMinus; }

// The gradient as the step reads it: clipped to ±c when c > 0; NaN stays NaN (as jnp.clip).
static inline float clip_grad(float x, float c) { return c > 0.0f ? (x > c ? c : (x < -c ? -c : x)) : x; }

// Adafactor accumulators (v, full | row/col) and their channels: μLO and VeLO.
static inline int has_adafactor(const LoptStepArgs *a) { return a->kind == KIND_ADAFACTOR || a->kind == KIND_VELO; }

// First of the 4·Ka spread channels (row, col, rsqrt row, rsqrt col; Ka decays each): after
// g, p, m, v, m·rsqrt(v), rsqrt(v), facG in the μLO layout (13 at K = Ka = 3); VeLO also has
// clip(g) and g·rsqrt(v) before them (15).
static inline int spread_first(const LoptStepArgs *a) {
  return (a->kind == KIND_VELO ? 6 : 4) + 2 * a->momenta + a->adafactorDecays;
}

// ---------------------------------------------------------------------------------------------
// The small dense layers, vectorized along the parameter axis: Y[M][BLOCK] = A[M][K]·X[K][BLOCK] + b.
// Four output rows share each loaded X row; 16 vector accumulators for BLOCK = 64.
static inline void dense_block(const float *restrict A, const float *restrict bias, const float *restrict X,
                               float *restrict Y, int M, int K, int relu) {
  int m = 0;
  for (; m + 4 <= M; m += 4) {
    vf acc[4][4];
    for (int r = 0; r < 4; r++) {
      const float b = bias[m + r];
      for (int j = 0; j < 4; j++) acc[r][j] = (vf){b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b};
    }
    for (int k = 0; k < K; k++) {
      const vf *x = (const vf *)(X + (size_t)k * BLOCK);
      const vf x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
      for (int r = 0; r < 4; r++) {
        const float a = A[(size_t)(m + r) * K + k];
        acc[r][0] += a * x0;
        acc[r][1] += a * x1;
        acc[r][2] += a * x2;
        acc[r][3] += a * x3;
      }
    }
    for (int r = 0; r < 4; r++) {
      vf *y = (vf *)(Y + (size_t)(m + r) * BLOCK);
      for (int j = 0; j < 4; j++) {
        vf v = acc[r][j];
        if (relu) v = relu_v(v);
        y[j] = v;
      }
    }
  }
  for (; m < M; m++) {
    vf acc[4];
    const float b = bias[m];
    for (int j = 0; j < 4; j++) acc[j] = (vf){b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b};
    for (int k = 0; k < K; k++) {
      const vf *x = (const vf *)(X + (size_t)k * BLOCK);
      const float a = A[(size_t)m * K + k];
      for (int j = 0; j < 4; j++) acc[j] += a * x[j];
    }
    vf *y = (vf *)(Y + (size_t)m * BLOCK);
    for (int j = 0; j < 4; j++) {
      vf v = acc[j];
      if (relu) v = relu_v(v);
      y[j] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per (member, tensor) work item.

typedef struct {
  const LoptStepArgs *a;
  int member;
  int tensor;
  const LoptTensor *t;
  int finite;
  // Adafactor per-row/col factors [Ka][nRow] / [Ka][nCol] (factored tensors only).
  float *rowFactor, *colFactor, *rsRow, *rsCol;
  // First layer with the channel scales folded in, transposed: [H][C]; and its bias [H].
  float *w0sT;
  float *bias0;
  double sumsq[MAX_CHANNELS];
} Item;

static inline const float *memberRow(const float *base, int member, size_t len) { return base + (size_t)member * len; }

// Pass 0: is the member's gradient finite (and is g² representable, as the reference's float32 mean(g²))?
// (16 lanes of partial sums: the mean overflows where the reference's does, up to rounding.)
static int gradient_is_finite(const float *g, size_t N, float clip) {
  const vf max = splat(3.40282347e38f), hi = splat(clip), lo = splat(-clip);
  vf sum = splat(0.0f);
  vi ok = sum == sum;  // every lane true
  size_t n0 = 0;
  for (; n0 < N; n0 += 16) {
    vf x = splat(0.0f);
    if (n0 + 16 <= N) {
      memcpy(&x, g + n0, sizeof x);
    } else {
      for (size_t j = n0; j < N; j++) x[j - n0] = g[j];
    }
    if (clip > 0.0f) x = select_v(x > hi, hi, select_v(x < lo, lo, x));  // a NaN stays NaN
    const vf sq = x * x;
    ok &= sq <= max;  // false for inf and NaN
    sum += sq;
  }
  float total = 0.0f;
  int all = 1;
  for (int l = 0; l < 16; l++) {
    total += sum[l];
    all &= ok[l] != 0;
  }
  return all && isfinite(total / (float)N);
}

// Copies a member's old accumulators to the new ones (its gradient was not finite: nothing steps).
static void keep_accumulators(const LoptStepArgs *a, const LoptTensor *t, int p) {
  const int K = a->momenta, Ka = a->adafactorDecays;
  const size_t N = t->size;
#define KEEP(dst, src, len)                                                                         \
  if ((dst) != NULL && (const float *)(dst) != (src)) memcpy((dst) + (size_t)p * (len), (src) + (size_t)p * (len), sizeof(float) * (len))
  KEEP(t->m, t->m0, (size_t)K * N);
  if (!has_adafactor(a)) return;
  KEEP(t->v, t->v0, N);
  if (!t->factored) {
    KEEP(t->full, t->full0, (size_t)Ka * N);
  } else {
    KEEP(t->row, t->row0, (size_t)Ka * t->nRow);
    KEEP(t->col, t->col0, (size_t)Ka * t->nCol);
  }
#undef KEEP
}

// How a block reads a row/col vector through its index array: idx[j] = idx[0] + j (a run: the
// index walks the last dim), all equal (the block lies in one row/col), or neither (a gather).
enum { IDX_GATHER = 0, IDX_RUN = 1, IDX_SAME = 2 };

static inline int index_pattern(const int32_t *idx, int count) {
  const int32_t i0 = idx[0];
  int run = 1, same = 1;
  for (int j = 0; j < count; j++) {
    run &= idx[j] == i0 + j;
    same &= idx[j] == i0;
  }
  return run ? IDX_RUN : same ? IDX_SAME : IDX_GATHER;
}

// dst[j] = vec[idx[j]] for j < count, with the pattern of idx.
static inline void gather(float *restrict dst, const float *restrict vec, const int32_t *idx, int pattern, int count) {
  if (pattern == IDX_RUN) {
    copy_block(dst, vec + idx[0], count);
  } else if (pattern == IDX_SAME) {
    const float x = vec[idx[0]];
    for (int j = 0; j < count; j++) dst[j] = x;
  } else {
    for (int j = 0; j < count; j++) dst[j] = vec[idx[j]];
  }
}

// sum[idx[j]] += q[j] for j < count (double sums of float terms).
static inline void scatter_add(double *restrict sum, const int32_t *idx, const float *restrict q, int count) {
  const int pattern = index_pattern(idx, count);
  if (pattern == IDX_RUN) {
    double *s = sum + idx[0];
    for (int j = 0; j < count; j++) s[j] += (double)q[j];
  } else if (pattern == IDX_SAME) {
    double acc = 0.0;
    for (int j = 0; j < count; j++) acc += (double)q[j];
    sum[idx[0]] += acc;
  } else {
    for (int j = 0; j < count; j++) sum[idx[j]] += (double)q[j];
  }
}

// Pass 1 (per item, after the finite check): the row/col accumulators of a factored tensor (their
// EMAs need the means of g² over whole rows and cols) and the per-row/col factors.
static void update_row_col(Item *it) {
  const LoptStepArgs *a = it->a;
  const LoptTensor *t = it->t;
  const int p = it->member, Ka = a->adafactorDecays;
  const size_t N = t->size;
  const float *graw = memberRow(t->grad, p, N);
  const float clip = a->gradClip;
  const size_t nRow = t->nRow, nCol = t->nCol, nRest = t->nRest;
  // Means of g²+ε over d0 (rows) and d1 (cols), in double.
  double *rowSum = calloc(nRow + nCol + nRest, sizeof(double));
  double *colSum = rowSum + nRow;
  double *restSum = colSum + nCol;
  float q[BLOCK] __attribute__((aligned(64)));
  for (size_t n0 = 0; n0 < N; n0 += BLOCK) {
    const int count = (int)(N - n0 < BLOCK ? N - n0 : BLOCK);
    for (int j = 0; j < count; j++) {
      const float g = clip_grad(graw[n0 + j], clip);
      q[j] = g * g + 1e-30f;
    }
    scatter_add(rowSum, t->rowIndex + n0, q, count);
    scatter_add(colSum, t->colIndex + n0, q, count);
  }
  const double rowDiv = (double)N / (double)nRow, colDiv = (double)N / (double)nCol;
  float *row = t->row + (size_t)p * Ka * nRow;
  float *col = t->col + (size_t)p * Ka * nCol;
  const float *row0 = t->row0 + (size_t)p * Ka * nRow, *col0 = t->col0 + (size_t)p * Ka * nCol;
  for (int k = 0; k < Ka; k++) {
    const float beta = a->decayAdafactor[p * Ka + k], om = 1.0f - beta;
    float *rk = row + (size_t)k * nRow;
    float *ck = col + (size_t)k * nCol;
    const float *rk0 = row0 + (size_t)k * nRow, *ck0 = col0 + (size_t)k * nCol;
    for (size_t i = 0; i < nRow; i++) rk[i] = ema(rk0[i], (float)(rowSum[i] / rowDiv), beta, om);
    for (size_t j = 0; j < nCol; j++) ck[j] = ema(ck0[j], (float)(colSum[j] / colDiv), beta, om);
    // Rows are normalized by their mean along d1 (one value per index of the remaining dims).
    memset(restSum, 0, nRest * sizeof(double));
    for (size_t i = 0; i < nRow; i++) restSum[t->restIndex[i]] += rk[i];
    const double restDiv = (double)nRow / (double)nRest;
    float *rf = it->rowFactor + (size_t)k * nRow, *rr = it->rsRow + (size_t)k * nRow;
    float *cf = it->colFactor + (size_t)k * nCol, *rc = it->rsCol + (size_t)k * nCol;
    for (size_t i = 0; i < nRow; i++) {
      const float mean = (float)(restSum[t->restIndex[i]] / restDiv);
      const float ratio = rk[i] / (mean + 1e-9f);
      rf[i] = rsqrtf_(ratio > 1e-9f ? ratio : 1e-9f);
      rr[i] = rsqrtf_(rk[i] + 1e-8f);
    }
    for (size_t j = 0; j < nCol; j++) {
      cf[j] = rsqrtf_(ck[j] > 1e-9f ? ck[j] : 1e-9f);
      rc[j] = rsqrtf_(ck[j] + 1e-8f);
    }
  }
  free(rowSum);
}

// Pass 2, first half: the elementwise accumulators (m, v, full) of params [n0, n0 + count), old → new.
static void block_accumulators(const Item *it, size_t n0, int count) {
  const LoptStepArgs *a = it->a;
  const LoptTensor *t = it->t;
  const int p = it->member, K = a->momenta, Ka = a->adafactorDecays;
  const size_t N = t->size;
  const float *graw = memberRow(t->grad, p, N) + n0;
  const float clip = a->gradClip;
  float g[BLOCK] __attribute__((aligned(64)));
  for (int j = 0; j < count; j++) g[j] = clip_grad(graw[j], clip);
  for (int k = 0; k < K; k++) {
    const float beta = a->decayMomentum[p * K + k], om = 1.0f - beta;
    const size_t o = ((size_t)p * K + k) * N + n0;
    float *mk = t->m + o;
    const float *mk0 = t->m0 + o;
    for (int j = 0; j < count; j++) mk[j] = ema(mk0[j], g[j], beta, om);
  }
  if (!has_adafactor(a)) return;
  {
    const float beta = a->decayRms[p], om = 1.0f - beta;
    float *v = t->v + (size_t)p * N + n0;
    const float *v0 = t->v0 + (size_t)p * N + n0;
    for (int j = 0; j < count; j++) v[j] = ema(v0[j], g[j] * g[j], beta, om);
  }
  if (t->factored) return;
  for (int k = 0; k < Ka; k++) {
    const float beta = a->decayAdafactor[p * Ka + k], om = 1.0f - beta;
    const size_t o = ((size_t)p * Ka + k) * N + n0;
    float *f = t->full + o;
    const float *f0 = t->full0 + o;
    for (int j = 0; j < count; j++) f[j] = ema(f0[j], g[j] * g[j] + 1e-30f, beta, om);
  }
}

// The raw channels of params [n0, n0 + count) into X[C][BLOCK] (zero-padded past count).
// withSpread = 0 skips the 12 channels that only spread a row/col value over the tensor (their
// statistics come from the row/col vectors directly, see item_spread_sumsq).
static void build_features(const Item *it, size_t n0, int count, float *restrict X, int withSpread) {
  const LoptStepArgs *a = it->a;
  const LoptTensor *t = it->t;
  const int p = it->member, K = a->momenta, Ka = a->adafactorDecays, C = a->channels;
  const size_t N = t->size;
  const int velo = a->kind == KIND_VELO;
  const float *graw = memberRow(t->grad, p, N) + n0;
  const float *w = memberRow(t->param, p, N) + n0;
  const float *m = t->m + (size_t)p * K * N + n0;
  if (count < BLOCK) memset(X, 0, sizeof(float) * (size_t)C * BLOCK);
  float *x = X;
  // Channel 0 is the (clipped) gradient: the other channels read it from there.
  const float clip = a->gradClip;
  for (int j = 0; j < count; j++) x[j] = clip_grad(graw[j], clip);
  const float *g = x;
  x += BLOCK;
  if (velo) {
    for (int j = 0; j < count; j++) x[j] = g[j] > 0.1f ? 0.1f : (g[j] < -0.1f ? -0.1f : g[j]);
    x += BLOCK;
  }
  copy_block(x, w, count);
  x += BLOCK;
  for (int k = 0; k < K; k++, x += BLOCK)
    copy_block(x, m + (size_t)k * N, count);
  if (!has_adafactor(a)) return;
  const float *v = t->v + (size_t)p * N + n0;
  float rsV[BLOCK];
  for (int j = 0; j < count; j++) rsV[j] = rsqrtf_(v[j] + 1e-6f);
  copy_block(x, v, count);
  x += BLOCK;
  for (int k = 0; k < K; k++, x += BLOCK)
    for (int j = 0; j < count; j++) x[j] = m[(size_t)k * N + j] * rsV[j];
  copy_block(x, rsV, count);
  x += BLOCK;
  // VeLO: g·rsqrt(v) between facG and the spread channels.
  float *facG = x, *rowF = x + (size_t)(Ka + velo) * BLOCK, *colF = rowF + (size_t)Ka * BLOCK;
  float *rsR = colF + (size_t)Ka * BLOCK, *rsC = rsR + (size_t)Ka * BLOCK, *facM = rsC + (size_t)Ka * BLOCK;
  if (velo) {
    float *gRsV = x + (size_t)Ka * BLOCK;
    for (int j = 0; j < count; j++) gRsV[j] = g[j] * rsV[j];
  }
  if (!t->factored) {
    const float *full = t->full + (size_t)p * Ka * N + n0;
    for (int k = 0; k < Ka; k++) {
      const float *f = full + (size_t)k * N;
      const float *mk = m + (size_t)k * N;
      const size_t o = (size_t)k * BLOCK;
      for (int j = 0; j < count; j++) {
        const float fp = f[j] + 1e-9f;
        facG[o + j] = g[j] * rsqrtf_(fp > 1e-9f ? fp : 1e-9f);
        rowF[o + j] = f[j];
        colF[o + j] = f[j];
        rsR[o + j] = rsqrtf_(f[j] + 1e-8f);
        rsC[o + j] = rsR[o + j];
        // μLO: m·(full + 1e-6)^-½ (as RMSProp); VeLO: m·full^-½.
        facM[o + j] = mk[j] * rsqrtf_(velo ? f[j] : f[j] + 1e-6f);
      }
    }
    return;
  }
  const int32_t *ri = t->rowIndex + n0, *ci = t->colIndex + n0;
  const int rp = index_pattern(ri, count), cp = index_pattern(ci, count);
  const float *row = t->row + (size_t)p * Ka * t->nRow, *col = t->col + (size_t)p * Ka * t->nCol;
  float both[BLOCK] __attribute__((aligned(64))), colPart[BLOCK] __attribute__((aligned(64)));
  for (int k = 0; k < Ka; k++) {
    const float *rk = row + (size_t)k * t->nRow, *ck = col + (size_t)k * t->nCol;
    const float *rf = it->rowFactor + (size_t)k * t->nRow, *cf = it->colFactor + (size_t)k * t->nCol;
    const float *rr = it->rsRow + (size_t)k * t->nRow, *rc = it->rsCol + (size_t)k * t->nCol;
    const float *mk = m + (size_t)k * N;
    const size_t o = (size_t)k * BLOCK;
    gather(both, rf, ri, rp, count);
    gather(colPart, cf, ci, cp, count);
    for (int j = 0; j < count; j++) {
      const float b = both[j] * colPart[j];
      facG[o + j] = g[j] * b;
      facM[o + j] = mk[j] * b;
    }
    if (!withSpread) continue;
    gather(rowF + o, rk, ri, rp, count);
    gather(colF + o, ck, ci, cp, count);
    gather(rsR + o, rr, ri, rp, count);
    gather(rsC + o, rc, ci, cp, count);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t blocks_of(size_t n) { return (n + BLOCK - 1) / BLOCK; }

// Pass 2: one block's per-channel sums of squares.
static void block_sumsq(const Item *it, size_t b, double *out) {
  float X[MAX_CHANNELS * BLOCK] __attribute__((aligned(64)));
  const size_t n0 = b * BLOCK;
  const int count = (int)((it->t->size - n0) < BLOCK ? it->t->size - n0 : BLOCK);
  const int spread = has_adafactor(it->a) && it->t->factored, first = spread_first(it->a);
  // The block's accumulators step here, while its gradient and accumulators are in cache for the features.
  block_accumulators(it, n0, count);
  build_features(it, n0, count, X, !spread);
  for (int c = 0; c < it->a->channels; c++) {
    if (spread && c >= first && c < first + 4 * it->a->adafactorDecays) {
      out[c] = 0;
      continue;
    }
    // 16 lanes × 4 partial sums, then the lanes in a fixed order (X is zero past count).
    const vf *x = (const vf *)(X + (size_t)c * BLOCK);
    const vf acc = (x[0] * x[0] + x[1] * x[1]) + (x[2] * x[2] + x[3] * x[3]);
    float s = 0.0f;
    for (int l = 0; l < 16; l++) s += acc[l];
    out[c] = s;
  }
}

// The spread channels' sums of squares (row, col, rsqrt(row), rsqrt(col) per decay): each row value
// stands for N/nRow parameters, each col value for N/nCol.
static void item_spread_sumsq(Item *it) {
  const LoptTensor *t = it->t;
  const int p = it->member, Ka = it->a->adafactorDecays, first = spread_first(it->a);
  const float *row = t->row + (size_t)p * Ka * t->nRow, *col = t->col + (size_t)p * Ka * t->nCol;
  const double perRow = (double)t->size / (double)t->nRow, perCol = (double)t->size / (double)t->nCol;
  for (int k = 0; k < Ka; k++) {
    double r = 0, c = 0, rr = 0, rc = 0;
    for (size_t i = 0; i < t->nRow; i++) {
      const float v = row[(size_t)k * t->nRow + i], s = it->rsRow[(size_t)k * t->nRow + i];
      r += (double)v * v;
      rr += (double)s * s;
    }
    for (size_t j = 0; j < t->nCol; j++) {
      const float v = col[(size_t)k * t->nCol + j], s = it->rsCol[(size_t)k * t->nCol + j];
      c += (double)v * v;
      rc += (double)s * s;
    }
    it->sumsq[first + k] = r * perRow;
    it->sumsq[first + Ka + k] = c * perCol;
    it->sumsq[first + 2 * Ka + k] = rr * perRow;
    it->sumsq[first + 3 * Ka + k] = rc * perCol;
  }
}

// Pass 3: the per-tensor first layer: channel scales folded into w0 (transposed to [H][C]) and
// the member's global features (the same for every parameter: time, fraction of training) folded
// into b0.
static void prepare_first_layer(Item *it) {
  const LoptStepArgs *a = it->a;
  const int p = it->member, C = a->channels, H = a->hidden, G = a->globalFeatures, I = C + G;
  const float *w0 = a->w0 + (size_t)p * I * H;
  const double N = (double)it->t->size;
  for (int c = 0; c < C; c++) {
    const float scale = rsqrtf_((float)(it->sumsq[c] / N) + 1e-5f);
    for (int h = 0; h < H; h++) it->w0sT[(size_t)h * C + c] = w0[(size_t)c * H + h] * scale;
  }
  const float *global = a->globals + (size_t)p * G;
  for (int h = 0; h < H; h++) {
    float s = 0.0f;
    for (int i = 0; i < G; i++) s += w0[(size_t)(C + i) * H + h] * global[i];
    it->bias0[h] = a->b0[(size_t)p * H + h] + s;
  }
}

// Pass 4: features → MLP → update, for one block.
static void block_update(const Item *it, size_t b, const float *w1T, const float *w2T) {
  const LoptStepArgs *a = it->a;
  const LoptTensor *t = it->t;
  const int p = it->member, C = a->channels, H = a->hidden;
  float X[MAX_CHANNELS * BLOCK] __attribute__((aligned(64)));
  // Hidden activations on the stack for the usual widths (μLO: 32), on the heap for wide ones.
  float small[(2 * SMALL_HIDDEN + 2) * BLOCK] __attribute__((aligned(64)));
  float *h1 = H <= SMALL_HIDDEN ? small : aligned_alloc(64, sizeof(float) * ((size_t)H * BLOCK * 2 + 2 * BLOCK));
  float *h2 = h1 + (size_t)H * BLOCK;
  float *out = h2 + (size_t)H * BLOCK;
  const size_t n0 = b * BLOCK;
  const int count = (int)((t->size - n0) < BLOCK ? t->size - n0 : BLOCK);
  build_features(it, n0, count, X, 1);
  dense_block(it->w0sT, it->bias0, X, h1, H, C, 1);
  dense_block(w1T, a->b1 + (size_t)p * H, h1, h2, H, H, 1);
  dense_block(w2T, a->b2 + (size_t)p * 2, h2, out, 2, H, 0);
  const float coef = (float)(-(double)a->stepMult * t->mupScale);
  const float expMult = a->expMult;
  float *u = t->update + (size_t)p * t->size + n0;
  float ub[BLOCK] __attribute__((aligned(64)));
  for (int l = 0; l < BLOCK / 16; l++) {
    const vf d = ((const vf *)out)[l], mag = ((const vf *)(out + BLOCK))[l];
    ((vf *)ub)[l] = d * exp_v(mag * expMult) * coef;
  }
  copy_block(u, ub, count);
  if (h1 != small) free(h1);
}

int lopt_channels(int kind, int momenta, int adafactorDecays) {
  switch (kind) {
    case KIND_MOMENTUM: return 2 + momenta;
    case KIND_ADAFACTOR: return 4 + 2 * momenta + 6 * adafactorDecays;
    case KIND_VELO: return 6 + 2 * momenta + 6 * adafactorDecays;
    default: return -1;
  }
}

int lopt_per_param_step(const LoptStepArgs *a) {
  const int P = a->population, T = a->tensors, C = a->channels, H = a->hidden;
  if (C > MAX_CHANNELS || C < 1 || H < 1 || C != lopt_channels(a->kind, a->momenta, a->adafactorDecays)) return -1;
  if (has_adafactor(a) && a->adafactorDecays != a->momenta) return -1;
  const int nItems = P * T;
  Item *items = calloc((size_t)nItems, sizeof(Item));
  // Per member: w1ᵀ [H][H] and w2ᵀ [2][H] (the dense kernel reads rows of Aᵀ).
  float *wT = malloc(sizeof(float) * (size_t)P * ((size_t)H * H + 2 * (size_t)H));
  for (int p = 0; p < P; p++) {
    float *w1T = wT + (size_t)p * ((size_t)H * H + 2 * H), *w2T = w1T + (size_t)H * H;
    const float *w1 = a->w1 + (size_t)p * H * H, *w2 = a->w2 + (size_t)p * H * 2;
    for (int i = 0; i < H; i++)
      for (int j = 0; j < H; j++) w1T[(size_t)j * H + i] = w1[(size_t)i * H + j];
    for (int i = 0; i < H; i++)
      for (int j = 0; j < 2; j++) w2T[(size_t)j * H + i] = w2[(size_t)i * 2 + j];
  }
  // Work lists: items, and (item, block) pairs.
  size_t totalBlocks = 0;
  for (int i = 0; i < nItems; i++) {
    Item *it = &items[i];
    it->a = a;
    it->tensor = i / P;
    it->member = i % P;
    it->t = &a->tensor[it->tensor];
    totalBlocks += blocks_of(it->t->size);
  }
  size_t *blockItem = malloc(sizeof(size_t) * totalBlocks * 2);
  size_t *blockIndex = blockItem + totalBlocks;
  double *partial = malloc(sizeof(double) * totalBlocks * (size_t)C);
  {
    size_t q = 0;
    for (int i = 0; i < nItems; i++)
      for (size_t b = 0; b < blocks_of(items[i].t->size); b++, q++) {
        blockItem[q] = (size_t)i;
        blockIndex[q] = b;
      }
  }
  const int threads = a->threads > 0 ? a->threads : 1;
  double t0 = now();

#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (nItems > 1)
  for (int i = 0; i < nItems; i++) {
    Item *it = &items[i];
    const LoptTensor *t = it->t;
    it->finite = gradient_is_finite(memberRow(t->grad, it->member, t->size), t->size, a->gradClip);
    a->finiteOut[it->tensor * P + it->member] = (uint8_t)it->finite;
    if (!it->finite) {
      keep_accumulators(a, t, it->member);
      continue;
    }
    if (has_adafactor(a) && t->factored) {
      const int Ka = a->adafactorDecays;
      it->rowFactor = malloc(sizeof(float) * (size_t)Ka * 2 * (t->nRow + t->nCol));
      it->rsRow = it->rowFactor + (size_t)Ka * t->nRow;
      it->colFactor = it->rsRow + (size_t)Ka * t->nRow;
      it->rsCol = it->colFactor + (size_t)Ka * t->nCol;
      update_row_col(it);
    }
  }

  double t1 = now();
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (totalBlocks >= MIN_PARALLEL_BLOCKS)
  for (size_t q = 0; q < totalBlocks; q++) {
    const Item *it = &items[blockItem[q]];
    if (it->finite) block_sumsq(it, blockIndex[q], partial + q * C);
  }

  {
    size_t q = 0;
    for (int i = 0; i < nItems; i++) {
      Item *it = &items[i];
      const size_t nb = blocks_of(it->t->size);
      if (it->finite) {
        for (size_t b = 0; b < nb; b++)
          for (int c = 0; c < C; c++) it->sumsq[c] += partial[(q + b) * C + c];
        if (has_adafactor(a) && it->t->factored) item_spread_sumsq(it);
        it->w0sT = malloc(sizeof(float) * (size_t)H * (C + 1));
        it->bias0 = it->w0sT + (size_t)H * C;
        prepare_first_layer(it);
      }
      q += nb;
    }
  }

  double t2 = now();
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (totalBlocks >= MIN_PARALLEL_BLOCKS)
  for (size_t q = 0; q < totalBlocks; q++) {
    const Item *it = &items[blockItem[q]];
    const float *w1T = wT + (size_t)it->member * ((size_t)H * H + 2 * H);
    if (it->finite) {
      block_update(it, blockIndex[q], w1T, w1T + (size_t)H * H);
    } else {
      const size_t n0 = blockIndex[q] * BLOCK;
      const size_t count = (it->t->size - n0) < BLOCK ? it->t->size - n0 : BLOCK;
      memset(it->t->update + (size_t)it->member * it->t->size + n0, 0, count * sizeof(float));
    }
  }

  double t3 = now();
  if (a->seconds != NULL) {
    a->seconds[0] = t1 - t0;
    a->seconds[1] = t2 - t1;
    a->seconds[2] = t3 - t2;
  }
  for (int i = 0; i < nItems; i++) {
    free(items[i].rowFactor);
    free(items[i].w0sT);
  }
  free(partial);
  free(blockItem);
  free(wT);
  free(items);
  return 0;
}

// VeLO's per-tensor LSTM reads moments of each tensor's parameters and old accumulators: per
// member, Σp², and for each momentum m_k and the second moment v a shift c (the member's first
// element), Σ(x − c) and Σ(x − c)² (shifted, so that a near-constant x keeps its variance). Double
// sums over fixed chunks added in chunk order: the same bits for any thread count.
#define MOMENT_CHUNK 4096

typedef float vf8 __attribute__((vector_size(32)));
typedef double vd8 __attribute__((vector_size(64)));

// Σ(x − c) and Σ(x − c)² over n elements (8 double lanes, added in a fixed order).
static void shifted_sums(const float *x, size_t n, float c, double *s1, double *s2) {
  vd8 a1 = {0}, a2 = {0};
  const vd8 cv = {c, c, c, c, c, c, c, c};
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    vf8 xf;
    memcpy(&xf, x + j, sizeof xf);
    const vd8 d = __builtin_convertvector(xf, vd8) - cv;
    a1 += d;
    a2 += d * d;
  }
  double r1 = 0, r2 = 0;
  for (int l = 0; l < 8; l++) {
    r1 += a1[l];
    r2 += a2[l];
  }
  for (; j < n; j++) {
    const double d = (double)x[j] - (double)c;
    r1 += d;
    r2 += d * d;
  }
  *s1 = r1;
  *s2 = r2;
}

int lopt_tensor_moments(const float *p, const float *m, const float *v, size_t N, int P, int K, int threads, double *out) {
  if (N < 1 || P < 1 || K < 1) return -1;
  const int W = 1 + 3 * (K + 1);  // per member: Σp², then (c, Σ(x−c), Σ(x−c)²) for m_0 … m_{K−1}, v
  const size_t chunks = (N + MOMENT_CHUNK - 1) / MOMENT_CHUNK;
  const size_t work = (size_t)P * chunks;
  // Per (member, chunk): Σp², and Σ(x−c), Σ(x−c)² per array.
  const int Wp = 1 + 2 * (K + 1);
  double *partial = malloc(sizeof(double) * work * (size_t)Wp);
  if (partial == NULL) return -1;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads > 0 ? threads : 1) if (work > 1)
  for (size_t q = 0; q < work; q++) {
    const int member = (int)(q / chunks);
    const size_t n0 = (q % chunks) * MOMENT_CHUNK;
    const size_t n = N - n0 < MOMENT_CHUNK ? N - n0 : MOMENT_CHUNK;
    double *o = partial + q * (size_t)Wp;
    double s1, s2;
    shifted_sums(p + (size_t)member * N + n0, n, 0.0f, &s1, &s2);
    o[0] = s2;
    for (int k = 0; k <= K; k++) {
      const float *x = k < K ? m + ((size_t)member * K + k) * N : v + (size_t)member * N;
      shifted_sums(x + n0, n, x[0], &o[1 + 2 * k], &o[2 + 2 * k]);
    }
  }
  for (int member = 0; member < P; member++) {
    double *o = out + (size_t)member * W;
    memset(o, 0, sizeof(double) * (size_t)W);
    for (int k = 0; k <= K; k++) {
      const float *x = k < K ? m + ((size_t)member * K + k) * N : v + (size_t)member * N;
      o[1 + 3 * k] = x[0];
    }
    for (size_t c = 0; c < chunks; c++) {
      const double *pp = partial + ((size_t)member * chunks + c) * (size_t)Wp;
      o[0] += pp[0];
      for (int k = 0; k <= K; k++) {
        o[2 + 3 * k] += pp[1 + 2 * k];
        o[3 + 3 * k] += pp[2 + 2 * k];
      }
    }
  }
  free(partial);
  return 0;
}

// A square-ish GEMM C[M][N] = A[M][K]·B[K][N] with the same dense kernel (BLOCK columns of B at a
// time, packed), so the per-parameter MLP's rate can be compared with this engine's GEMM rate.
void lopt_sgemm(const float *A, const float *B, float *Cm, int M, int N, int K, int threads) {
  float *zero = calloc((size_t)M, sizeof(float));
  const int nb = (N + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1)
  for (int b = 0; b < nb; b++) {
    float *panel = aligned_alloc(64, sizeof(float) * (size_t)K * BLOCK);
    float *out = aligned_alloc(64, sizeof(float) * (size_t)M * BLOCK);
    const int n0 = b * BLOCK, count = N - n0 < BLOCK ? N - n0 : BLOCK;
    for (int k = 0; k < K; k++) {
      memset(panel + (size_t)k * BLOCK, 0, sizeof(float) * BLOCK);
      memcpy(panel + (size_t)k * BLOCK, B + (size_t)k * N + n0, sizeof(float) * (size_t)count);
    }
    dense_block(A, zero, panel, out, M, K, 0);
    for (int m = 0; m < M; m++) memcpy(Cm + (size_t)m * N + n0, out + (size_t)m * BLOCK, sizeof(float) * (size_t)count);
    free(out);
    free(panel);
  }
  free(zero);
}
