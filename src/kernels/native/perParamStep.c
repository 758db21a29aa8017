// The fused per-parameter learned-optimizer step (μLO / AdafacMLPLOpt and MLPLOpt), over a
// population [P, N] per tensor, with no [P, C, N] intermediate.
//
// Semantics are those of src/lopt/features.ts + perParamMlp.ts + learnedTransform.ts (the tfjs-ops
// reference path, itself tested against a float64 re-implementation of learned_optimization):
//   accumulators (in place) → 28 (adafactor) or 2+K (momentum) channels → per-channel
//   x·rsqrt(1e-5 + mean(x²)) folded into the first layer's weights → MLP C+G → H → H → 2 with the
//   G per-member global features (time, fraction of training) folded into the first bias →
//   update = −stepMult·mupScale·d·exp(expMult·m).
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
// First of the 12 spread channels (row, col, rsqrt row, rsqrt col; 3 decays each) in the μLO layout.
#define SPREAD_FIRST 13

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

static inline vf relu_v(vf v) { return (vf)((vi)v & (v > 0)); }

static inline float rsqrtf_(float x) { return 1.0f / sqrtf(x); }

static inline float ema(float old, float x, float beta, float oneMinus) { return old * beta + x * oneMinus; }

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
static int gradient_is_finite(const float *g, size_t N) {
  float sum = 0.0f;
  int ok = 1;
  for (size_t n = 0; n < N; n++) {
    const float sq = g[n] * g[n];
    ok &= isfinite(sq) ? 1 : 0;
    sum += sq;
  }
  return ok && isfinite(sum / (float)N);
}

// Pass 1: accumulators in place, and the Adafactor per-row/col factors.
static void update_accumulators(Item *it) {
  const LoptStepArgs *a = it->a;
  const LoptTensor *t = it->t;
  const int p = it->member, K = a->momenta, Ka = a->adafactorDecays;
  const size_t N = t->size;
  const float *g = memberRow(t->grad, p, N);
  float *m = t->m + (size_t)p * K * N;
  for (int k = 0; k < K; k++) {
    const float beta = a->decayMomentum[p * K + k], om = 1.0f - beta;
    float *mk = m + (size_t)k * N;
    for (size_t n = 0; n < N; n++) mk[n] = ema(mk[n], g[n], beta, om);
  }
  if (a->kind != KIND_ADAFACTOR) return;
  {
    const float beta = a->decayRms[p], om = 1.0f - beta;
    float *v = t->v + (size_t)p * N;
    for (size_t n = 0; n < N; n++) v[n] = ema(v[n], g[n] * g[n], beta, om);
  }
  if (!t->factored) {
    float *full = t->full + (size_t)p * Ka * N;
    for (int k = 0; k < Ka; k++) {
      const float beta = a->decayAdafactor[p * Ka + k], om = 1.0f - beta;
      float *f = full + (size_t)k * N;
      for (size_t n = 0; n < N; n++) f[n] = ema(f[n], g[n] * g[n] + 1e-30f, beta, om);
    }
    return;
  }
  const size_t nRow = t->nRow, nCol = t->nCol, nRest = t->nRest;
  // Means of g²+ε over d0 (rows) and d1 (cols), in double.
  double *rowSum = calloc(nRow + nCol + nRest, sizeof(double));
  double *colSum = rowSum + nRow;
  double *restSum = colSum + nCol;
  for (size_t n = 0; n < N; n++) {
    const double q = (double)(g[n] * g[n] + 1e-30f);
    rowSum[t->rowIndex[n]] += q;
    colSum[t->colIndex[n]] += q;
  }
  const double rowDiv = (double)N / (double)nRow, colDiv = (double)N / (double)nCol;
  float *row = t->row + (size_t)p * Ka * nRow;
  float *col = t->col + (size_t)p * Ka * nCol;
  for (int k = 0; k < Ka; k++) {
    const float beta = a->decayAdafactor[p * Ka + k], om = 1.0f - beta;
    float *rk = row + (size_t)k * nRow;
    float *ck = col + (size_t)k * nCol;
    for (size_t i = 0; i < nRow; i++) rk[i] = ema(rk[i], (float)(rowSum[i] / rowDiv), beta, om);
    for (size_t j = 0; j < nCol; j++) ck[j] = ema(ck[j], (float)(colSum[j] / colDiv), beta, om);
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

// The raw channels of params [n0, n0 + count) into X[C][BLOCK] (zero-padded past count).
// withSpread = 0 skips the 12 channels that only spread a row/col value over the tensor (their
// statistics come from the row/col vectors directly, see item_spread_sumsq).
static void build_features(const Item *it, size_t n0, int count, float *restrict X, int withSpread) {
  const LoptStepArgs *a = it->a;
  const LoptTensor *t = it->t;
  const int p = it->member, K = a->momenta, Ka = a->adafactorDecays, C = a->channels;
  const size_t N = t->size;
  const float *g = memberRow(t->grad, p, N) + n0;
  const float *w = memberRow(t->param, p, N) + n0;
  const float *m = t->m + (size_t)p * K * N + n0;
  if (count < BLOCK) memset(X, 0, sizeof(float) * (size_t)C * BLOCK);
  float *x = X;
  for (int j = 0; j < count; j++) x[j] = g[j];
  x += BLOCK;
  for (int j = 0; j < count; j++) x[j] = w[j];
  x += BLOCK;
  for (int k = 0; k < K; k++, x += BLOCK)
    for (int j = 0; j < count; j++) x[j] = m[(size_t)k * N + j];
  if (a->kind != KIND_ADAFACTOR) return;
  const float *v = t->v + (size_t)p * N + n0;
  float rsV[BLOCK];
  for (int j = 0; j < count; j++) rsV[j] = rsqrtf_(v[j] + 1e-6f);
  for (int j = 0; j < count; j++) x[j] = v[j];
  x += BLOCK;
  for (int k = 0; k < K; k++, x += BLOCK)
    for (int j = 0; j < count; j++) x[j] = m[(size_t)k * N + j] * rsV[j];
  for (int j = 0; j < count; j++) x[j] = rsV[j];
  x += BLOCK;
  float *facG = x, *rowF = x + (size_t)Ka * BLOCK, *colF = rowF + (size_t)Ka * BLOCK;
  float *rsR = colF + (size_t)Ka * BLOCK, *rsC = rsR + (size_t)Ka * BLOCK, *facM = rsC + (size_t)Ka * BLOCK;
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
        facM[o + j] = mk[j] * rsqrtf_(f[j] + 1e-6f);
      }
    }
    return;
  }
  const int32_t *ri = t->rowIndex + n0, *ci = t->colIndex + n0;
  const float *row = t->row + (size_t)p * Ka * t->nRow, *col = t->col + (size_t)p * Ka * t->nCol;
  for (int k = 0; k < Ka; k++) {
    const float *rk = row + (size_t)k * t->nRow, *ck = col + (size_t)k * t->nCol;
    const float *rf = it->rowFactor + (size_t)k * t->nRow, *cf = it->colFactor + (size_t)k * t->nCol;
    const float *rr = it->rsRow + (size_t)k * t->nRow, *rc = it->rsCol + (size_t)k * t->nCol;
    const float *mk = m + (size_t)k * N;
    const size_t o = (size_t)k * BLOCK;
    for (int j = 0; j < count; j++) {
      const float both = rf[ri[j]] * cf[ci[j]];
      facG[o + j] = g[j] * both;
      facM[o + j] = mk[j] * both;
    }
    if (!withSpread) continue;
    for (int j = 0; j < count; j++) {
      rowF[o + j] = rk[ri[j]];
      colF[o + j] = ck[ci[j]];
      rsR[o + j] = rr[ri[j]];
      rsC[o + j] = rc[ci[j]];
    }
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
  const int spread = it->a->kind == KIND_ADAFACTOR && it->t->factored;
  build_features(it, n0, count, X, !spread);
  for (int c = 0; c < it->a->channels; c++) {
    if (spread && c >= SPREAD_FIRST && c < SPREAD_FIRST + 4 * it->a->adafactorDecays) {
      out[c] = 0;
      continue;
    }
    float s = 0.0f;
    const float *x = X + (size_t)c * BLOCK;
    for (int j = 0; j < count; j++) s += x[j] * x[j];
    out[c] = s;
  }
}

// The spread channels' sums of squares (row, col, rsqrt(row), rsqrt(col) per decay): each row value
// stands for N/nRow parameters, each col value for N/nCol.
static void item_spread_sumsq(Item *it) {
  const LoptTensor *t = it->t;
  const int p = it->member, Ka = it->a->adafactorDecays;
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
    it->sumsq[SPREAD_FIRST + k] = r * perRow;
    it->sumsq[SPREAD_FIRST + Ka + k] = c * perCol;
    it->sumsq[SPREAD_FIRST + 2 * Ka + k] = rr * perRow;
    it->sumsq[SPREAD_FIRST + 3 * Ka + k] = rc * perCol;
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
  for (int j = 0; j < count; j++) u[j] = out[j] * expf(out[BLOCK + j] * expMult) * coef;
  if (h1 != small) free(h1);
}

int lopt_per_param_step(const LoptStepArgs *a) {
  const int P = a->population, T = a->tensors, C = a->channels, H = a->hidden;
  if (C > MAX_CHANNELS || C < 1 || H < 1) return -1;
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

#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int i = 0; i < nItems; i++) {
    Item *it = &items[i];
    const LoptTensor *t = it->t;
    it->finite = gradient_is_finite(memberRow(t->grad, it->member, t->size), t->size);
    a->finiteOut[it->tensor * P + it->member] = (uint8_t)it->finite;
    if (!it->finite) continue;
    if (a->kind == KIND_ADAFACTOR && t->factored) {
      const int Ka = a->adafactorDecays;
      it->rowFactor = malloc(sizeof(float) * (size_t)Ka * 2 * (t->nRow + t->nCol));
      it->rsRow = it->rowFactor + (size_t)Ka * t->nRow;
      it->colFactor = it->rsRow + (size_t)Ka * t->nRow;
      it->rsCol = it->colFactor + (size_t)Ka * t->nCol;
    }
    update_accumulators(it);
  }

  double t1 = now();
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
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
        if (a->kind == KIND_ADAFACTOR && it->t->factored) item_spread_sumsq(it);
        it->w0sT = malloc(sizeof(float) * (size_t)H * (C + 1));
        it->bias0 = it->w0sT + (size_t)H * C;
        prepare_first_layer(it);
      }
      q += nb;
    }
  }

  double t2 = now();
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
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
