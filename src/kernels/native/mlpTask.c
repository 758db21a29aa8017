// The image-MLP task (tasks/mlp.ts) forward and backward for every population member: hidden
// layers z = h·W + b, h = act(z); logits = (h·W + b)·readoutMult; loss = mean softmax
// cross-entropy. Gradients are those of the sum of the members' losses (each member's parameters
// touch only its own loss), as tfjs's valueAndGrads gives them. Members run in parallel; each
// member's arithmetic is sequential, so results do not depend on the thread count.
#include "mlpTask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static inline float gelu(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + tanhf(u));
}

static inline float gelu_grad(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  const float t = tanhf(u);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
}

static void member(const MlpTaskArgs *a, int p) {
  const int L = a->layers, B = a->batch;
  const int *dims = a->dims;
  // Activations h_0 = x, h_1 … h_{L-1} (post-activation) and pre-activations z_1 … z_{L-1}.
  size_t hidden = 0;
  for (int l = 1; l < L; l++) hidden += (size_t)B * dims[l];
  const int classes = dims[L];
  int widest = classes;
  for (int l = 0; l < L; l++) widest = dims[l] > widest ? dims[l] : widest;
  float *store = malloc(sizeof(float) * (2 * hidden + (size_t)B * classes + 2 * (size_t)B * widest + (size_t)widest * widest));
  float *zs = store, *hs = store + hidden, *logits = hs + hidden, *dz = logits + (size_t)B * classes, *dh = dz + (size_t)B * widest,
        *wt = dh + (size_t)B * widest;
  const float *h = a->x + (size_t)p * B * dims[0];
  const float *hAt[64];
  float *zAt[64];
  hAt[0] = h;
  size_t off = 0;
  for (int l = 0; l < L; l++) {
    const int in = dims[l], out = dims[l + 1];
    const float *w = a->w[l] + (size_t)p * in * out, *bias = a->b[l] + (size_t)p * out;
    float *z = l + 1 < L ? zs + off : logits;
    for (int i = 0; i < B; i++) memcpy(z + (size_t)i * out, bias, sizeof(float) * out);
    lopt_gemm(B, out, in, hAt[l], in, 1, w, out, z, out, 1);
    if (l + 1 == L) break;
    zAt[l + 1] = z;
    float *hn = hs + off;
    const size_t n = (size_t)B * out;
    if (a->activation == ACT_RELU)
      for (size_t i = 0; i < n; i++) hn[i] = z[i] > 0 ? z[i] : 0;
    else if (a->activation == ACT_TANH)
      for (size_t i = 0; i < n; i++) hn[i] = tanhf(z[i]);
    else
      for (size_t i = 0; i < n; i++) hn[i] = gelu(z[i]);
    hAt[l + 1] = hn;
    off += n;
  }
  // Loss and d(loss)/d(pre-multiplier readout): mult·(softmax(mult·z) − onehot)/B.
  const float mult = a->readoutMult;
  const int32_t *y = a->y + (size_t)p * B;
  double total = 0;
  for (int i = 0; i < B; i++) {
    float *row = logits + (size_t)i * classes;
    float *g = dz + (size_t)i * classes;
    float mx = -INFINITY;
    for (int c = 0; c < classes; c++) {
      row[c] *= mult;
      mx = row[c] > mx ? row[c] : mx;
    }
    float sum = 0;
    for (int c = 0; c < classes; c++) sum += expf(row[c] - mx);
    const float lse = mx + logf(sum);
    const int label = y[i];
    if (label >= 0 && label < classes) total += (double)(lse - row[label]);
    for (int c = 0; c < classes; c++) g[c] = expf(row[c] - lse);
    if (label >= 0 && label < classes) g[label] -= 1.0f;
    for (int c = 0; c < classes; c++) g[c] *= mult / (float)B;
  }
  a->loss[p] = (float)(total / B);
  for (int l = L - 1; l >= 0; l--) {
    const int in = dims[l], out = dims[l + 1];
    float *gw = a->gw[l] + (size_t)p * in * out, *gb = a->gb[l] + (size_t)p * out;
    // gW = hᵀ·dz, gb = Σ_rows dz.
    lopt_gemm(in, out, B, hAt[l], 1, in, dz, out, gw, out, 0);
    for (int o = 0; o < out; o++) gb[o] = 0;
    for (int i = 0; i < B; i++)
      for (int o = 0; o < out; o++) gb[o] += dz[(size_t)i * out + o];
    if (l == 0) break;
    // dh = dz·Wᵀ (W transposed once into wt), then dz ← dh ⊙ act'(z).
    const float *w = a->w[l] + (size_t)p * in * out;
    for (int i = 0; i < in; i++)
      for (int o = 0; o < out; o++) wt[(size_t)o * in + i] = w[(size_t)i * out + o];
    lopt_gemm(B, in, out, dz, out, 1, wt, in, dh, in, 0);
    const float *z = zAt[l], *hl = hAt[l];
    const size_t n = (size_t)B * in;
    if (a->activation == ACT_RELU)
      for (size_t i = 0; i < n; i++) dz[i] = z[i] > 0 ? dh[i] : 0;
    else if (a->activation == ACT_TANH)
      for (size_t i = 0; i < n; i++) dz[i] = dh[i] * (1.0f - hl[i] * hl[i]);
    else
      for (size_t i = 0; i < n; i++) dz[i] = dh[i] * gelu_grad(z[i]);
  }
  free(store);
}

void lopt_mlp_loss_grads(const MlpTaskArgs *a) {
  const int threads = a->threads > 0 ? a->threads : 1;
  (void)threads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int p = 0; p < a->population; p++) member(a, p);
}
