// The fused per-parameter learned-optimizer step: see perParamStep.c.
#ifndef LOPT_PER_PARAM_STEP_H
#define LOPT_PER_PARAM_STEP_H
#include <stddef.h>
#include <stdint.h>

// KIND_VELO: VeLO's (HyperV2 `_ff_mod`) inputs: μLO's accumulators, 30 channels in VeLO's order
// (g, clip(g, ±0.1), p, m, v, m·rsqrt(v), rsqrt(v), facG, g·rsqrt(v), row, col, rsqrt row,
// rsqrt col, facMom), facMom unfactored = m·rsqrt(full) with no epsilon.
enum { KIND_MOMENTUM = 0, KIND_ADAFACTOR = 1, KIND_VELO = 2 };

// One parameter tensor of a population: every array holds P members back to back.
typedef struct {
  size_t size;           // N, elements of one member (a scalar counts as 1)
  double mupScale;       // the tensor's μP update scale
  const float *grad;     // [P][N]
  const float *param;    // [P][N]
  // The accumulators before (…0, read) and after the step (written; a member whose gradient is not
  // finite gets the old values). The same array for both updates in place.
  const float *m0, *v0, *full0, *row0, *col0;
  float *m;              // [P][K][N]
  float *v;              // [P][N] (adafactor)
  float *full;           // [P][Ka][N] (adafactor, rank ≤ 1)
  float *row, *col;      // [P][Ka][nRow], [P][Ka][nCol] (adafactor, rank ≥ 2)
  int factored;
  size_t nRow, nCol, nRest;
  const int32_t *rowIndex;   // [N]: the row accumulator element of each parameter (d0 removed)
  const int32_t *colIndex;   // [N]: the col accumulator element (d1 removed)
  const int32_t *restIndex;  // [nRow]: the element of mean(row, d1) each row element belongs to
  float *update;         // [P][N], written
} LoptTensor;

typedef struct {
  int kind, population, tensors, momenta, adafactorDecays, channels, globalFeatures, hidden, threads;
  float stepMult, expMult;
  float gradClip;  // > 0: gradients clipped to ±gradClip before anything reads them (NaN stays NaN)
  const float *w0, *b0, *w1, *b1, *w2, *b2;  // [P][C+G][H], [P][H], [P][H][H], [P][H], [P][H][2], [P][2]
  const float *decayMomentum;   // [P][K]
  const float *decayRms;        // [P]
  const float *decayAdafactor;  // [P][Ka]
  const float *globals;         // [P][G]: features equal for every parameter (time, fraction of training)
  uint8_t *finiteOut;           // [T][P]
  double *seconds;              // [3], written: finite check + row/col; accumulators + channel statistics; features + MLP + update
  LoptTensor *tensor;           // [T]
} LoptStepArgs;

int lopt_per_param_step(const LoptStepArgs *args);
// The channel count the kind builds (before the G global features), or -1 for an unknown kind.
int lopt_channels(int kind, int momenta, int adafactorDecays);
// VeLO's per-tensor moments (perParamStep.c): out [P][1 + 3(K+1)] = Σp², then (c, Σ(x−c), Σ(x−c)²)
// for m_0 … m_{K−1} [P][K][N] and v [P][N], c the member's first element. 0, or −1 on bad sizes.
int lopt_tensor_moments(const float *p, const float *m, const float *v, size_t N, int P, int K, int threads, double *out);
void lopt_sgemm(const float *A, const float *B, float *C, int M, int N, int K, int threads);

#endif
