// The fused per-parameter learned-optimizer step: see perParamStep.c.
#ifndef LOPT_PER_PARAM_STEP_H
#define LOPT_PER_PARAM_STEP_H
#include <stddef.h>
#include <stdint.h>

enum { KIND_MOMENTUM = 0, KIND_ADAFACTOR = 1 };

// One parameter tensor of a population: every array holds P members back to back.
typedef struct {
  size_t size;           // N, elements of one member (a scalar counts as 1)
  double mupScale;       // the tensor's μP update scale
  const float *grad;     // [P][N]
  const float *param;    // [P][N]
  float *m;              // [P][K][N], updated in place
  float *v;              // [P][N] (adafactor), in place
  float *full;           // [P][Ka][N] (adafactor, rank ≤ 1), in place
  float *row, *col;      // [P][Ka][nRow], [P][Ka][nCol] (adafactor, rank ≥ 2), in place
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
  const float *w0, *b0, *w1, *b1, *w2, *b2;  // [P][C+G][H], [P][H], [P][H][H], [P][H], [P][H][2], [P][2]
  const float *decayMomentum;   // [P][K]
  const float *decayRms;        // [P]
  const float *decayAdafactor;  // [P][Ka]
  const float *globals;         // [P][G]: features equal for every parameter (time, fraction of training)
  uint8_t *finiteOut;           // [T][P]
  double *seconds;              // [3], written: accumulators; channel statistics; features + MLP + update
  LoptTensor *tensor;           // [T]
} LoptStepArgs;

int lopt_per_param_step(const LoptStepArgs *args);
void lopt_sgemm(const float *A, const float *B, float *C, int M, int N, int K, int threads);

#endif
