// Node-API bindings of the native kernels. Every array length is checked against the header
// before the kernel runs: a wrong length is a thrown error, never an out-of-bounds access.
#include <node_api.h>
#include <stdio.h>
#include <string.h>

#include "mlpTask.h"
#include "perParamStep.h"


#define THROW(env, msg)                        \
  do {                                         \
    napi_throw_error((env), NULL, (msg));      \
    return NULL;                               \
  } while (0)

typedef struct {
  void *data;
  size_t length;
  napi_typedarray_type type;
} View;

static int view_of(napi_env env, napi_value v, View *out) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_value buf;
  size_t offset;
  return napi_get_typedarray_info(env, v, &out->type, &out->length, &out->data, &buf, &offset) == napi_ok;
}

static int element_view(napi_env env, napi_value arr, uint32_t i, napi_typedarray_type type, size_t length, View *out) {
  napi_value e;
  if (napi_get_element(env, arr, i, &e) != napi_ok) return 0;
  if (!view_of(env, e, out)) return 0;
  return out->type == type && out->length == length;
}

#define HEADER_FIXED 12
#define HEADER_PER_TENSOR 6
#define ARRAYS_FIXED 12
#define ARRAYS_PER_TENSOR 16

// perParamStep(header: Float64Array, arrays: TypedArray[]): see perParamStep.h for the layout.
static napi_value PerParamStep(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2) THROW(env, "perParamStep: expected (header, arrays)");
  View h;
  if (!view_of(env, argv[0], &h) || h.type != napi_float64_array || h.length < HEADER_FIXED)
    THROW(env, "perParamStep: header must be a Float64Array");
  const double *hd = h.data;
  LoptStepArgs a;
  memset(&a, 0, sizeof a);
  a.kind = (int)hd[0];
  a.population = (int)hd[1];
  a.tensors = (int)hd[2];
  a.momenta = (int)hd[3];
  a.adafactorDecays = (int)hd[4];
  a.channels = (int)hd[5];
  a.hidden = (int)hd[6];
  a.threads = (int)hd[7];
  a.stepMult = (float)hd[8];
  a.expMult = (float)hd[9];
  a.globalFeatures = (int)hd[10];
  a.gradClip = (float)hd[11];
  const int P = a.population, T = a.tensors, K = a.momenta, Ka = a.adafactorDecays, C = a.channels, H = a.hidden, G = a.globalFeatures;
  // μLO and VeLO keep the Adafactor accumulators (v, full | row/col).
  const int ada = a.kind == KIND_ADAFACTOR || a.kind == KIND_VELO;
  if (P < 1 || T < 0 || K < 1 || C < 1 || C > 64 || C != lopt_channels(a.kind, K, Ka) || G < 0 || G > 64 || H < 1 || (ada && Ka != K) ||
      !(a.gradClip >= 0.0f) || h.length != (size_t)(HEADER_FIXED + HEADER_PER_TENSOR * T))
    THROW(env, "perParamStep: inconsistent header");
  bool isArray;
  uint32_t n;
  if (napi_is_array(env, argv[1], &isArray) != napi_ok || !isArray || napi_get_array_length(env, argv[1], &n) != napi_ok ||
      n != (uint32_t)(ARRAYS_FIXED + ARRAYS_PER_TENSOR * T))
    THROW(env, "perParamStep: arrays has the wrong length");
  const size_t I = (size_t)C + G;
  View v[ARRAYS_FIXED];
  const napi_typedarray_type F = napi_float32_array;
  const size_t lengths[ARRAYS_FIXED] = {P * I * H, (size_t)P * H, (size_t)P * H * H, (size_t)P * H, (size_t)P * H * 2, (size_t)P * 2,
                                        (size_t)P * K, ada ? (size_t)P : 0, ada ? (size_t)P * Ka : 0, (size_t)P * G, (size_t)T * P, 3};
  const napi_typedarray_type types[ARRAYS_FIXED] = {F, F, F, F, F, F, F, F, F, F, napi_uint8_array, napi_float64_array};
  for (uint32_t i = 0; i < ARRAYS_FIXED; i++)
    if (!element_view(env, argv[1], i, types[i], lengths[i], &v[i])) {
      char msg[96];
      snprintf(msg, sizeof msg, "perParamStep: array %u has the wrong type or length", i);
      THROW(env, msg);
    }
  a.w0 = v[0].data;
  a.b0 = v[1].data;
  a.w1 = v[2].data;
  a.b1 = v[3].data;
  a.w2 = v[4].data;
  a.b2 = v[5].data;
  a.decayMomentum = v[6].data;
  a.decayRms = v[7].data;
  a.decayAdafactor = v[8].data;
  a.globals = v[9].data;
  a.finiteOut = v[10].data;
  a.seconds = v[11].data;
  LoptTensor tensors[T > 0 ? T : 1];
  a.tensor = tensors;
  for (int t = 0; t < T; t++) {
    const double *th = hd + HEADER_FIXED + HEADER_PER_TENSOR * t;
    LoptTensor *x = &tensors[t];
    memset(x, 0, sizeof *x);
    x->size = (size_t)th[0];
    x->mupScale = th[1];
    x->factored = ada && th[2] != 0;
    x->nRow = (size_t)th[3];
    x->nCol = (size_t)th[4];
    x->nRest = (size_t)th[5];
    const size_t N = x->size;
    if (N < 1 || (x->factored && (x->nRow < 1 || x->nCol < 1 || x->nRest < 1 || N % x->nRow || N % x->nCol || x->nRow % x->nRest)))
      THROW(env, "perParamStep: inconsistent tensor header");
    const size_t fullLen = ada && !x->factored ? (size_t)P * Ka * N : 0;
    const size_t rowLen = x->factored ? (size_t)P * Ka * x->nRow : 0, colLen = x->factored ? (size_t)P * Ka * x->nCol : 0;
    // grad, param; the old accumulators m, v, full, row, col; the new ones (written); the factor
    // indices; the update (written).
    const size_t tl[ARRAYS_PER_TENSOR] = {P * N,   P * N,  P * (size_t)K * N, ada ? P * N : 0, fullLen, rowLen, colLen, P * (size_t)K * N,
                                          ada ? P * N : 0, fullLen, rowLen, colLen, x->factored ? N : 0, x->factored ? N : 0,
                                          x->factored ? x->nRow : 0, P * N};
    const napi_typedarray_type I32 = napi_int32_array;
    const napi_typedarray_type tt[ARRAYS_PER_TENSOR] = {F, F, F, F, F, F, F, F, F, F, F, F, I32, I32, I32, F};
    View w[ARRAYS_PER_TENSOR];
    for (uint32_t i = 0; i < ARRAYS_PER_TENSOR; i++)
      if (!element_view(env, argv[1], ARRAYS_FIXED + ARRAYS_PER_TENSOR * t + i, tt[i], tl[i], &w[i])) {
        char msg[112];
        snprintf(msg, sizeof msg, "perParamStep: tensor %d, array %u has the wrong type or length", t, i);
        THROW(env, msg);
      }
    x->grad = w[0].data;
    x->param = w[1].data;
    x->m0 = w[2].data;
    x->v0 = w[3].data;
    x->full0 = w[4].data;
    x->row0 = w[5].data;
    x->col0 = w[6].data;
    x->m = w[7].data;
    x->v = w[8].data;
    x->full = w[9].data;
    x->row = w[10].data;
    x->col = w[11].data;
    x->rowIndex = w[12].data;
    x->colIndex = w[13].data;
    x->restIndex = w[14].data;
    x->update = w[15].data;
    if (x->factored) {
      for (size_t i = 0; i < N; i++)
        if ((size_t)x->rowIndex[i] >= x->nRow || (size_t)x->colIndex[i] >= x->nCol) THROW(env, "perParamStep: index out of range");
      for (size_t i = 0; i < x->nRow; i++)
        if ((size_t)x->restIndex[i] >= x->nRest) THROW(env, "perParamStep: index out of range");
    }
  }
  if (lopt_per_param_step(&a) != 0) THROW(env, "perParamStep: unsupported sizes");
  return NULL;
}

// sgemm(A, B, C, M, N, K, threads): C[M][N] = A[M][K]·B[K][N] (float32).
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) THROW(env, "sgemm: expected (A, B, C, M, N, K, threads)");
  int32_t d[4];
  for (int i = 0; i < 4; i++)
    if (napi_get_value_int32(env, argv[3 + i], &d[i]) != napi_ok) THROW(env, "sgemm: sizes must be integers");
  const int M = d[0], N = d[1], K = d[2];
  if (M < 1 || N < 1 || K < 1) THROW(env, "sgemm: sizes must be positive");
  View A, B, Cv;
  if (!view_of(env, argv[0], &A) || !view_of(env, argv[1], &B) || !view_of(env, argv[2], &Cv) || A.type != napi_float32_array ||
      B.type != napi_float32_array || Cv.type != napi_float32_array || A.length != (size_t)M * K || B.length != (size_t)K * N ||
      Cv.length != (size_t)M * N)
    THROW(env, "sgemm: A, B, C must be Float32Arrays of M·K, K·N and M·N");
  lopt_sgemm(A.data, B.data, Cv.data, M, N, K, d[3]);
  return NULL;
}

// tensorMoments(p, m, v: Float32Array [P·N], [P·K·N], [P·N]; P, K, threads; out: Float64Array
// [P·(1 + 3(K+1))], written): VeLO's per-tensor moments, see perParamStep.h.
static napi_value TensorMoments(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) THROW(env, "tensorMoments: expected (p, m, v, P, K, threads, out)");
  int32_t d[3];
  for (int i = 0; i < 3; i++)
    if (napi_get_value_int32(env, argv[3 + i], &d[i]) != napi_ok) THROW(env, "tensorMoments: P, K and threads must be integers");
  const int P = d[0], K = d[1];
  View p, m, v, out;
  if (P < 1 || K < 1 || K > 64 || !view_of(env, argv[0], &p) || !view_of(env, argv[1], &m) || !view_of(env, argv[2], &v) ||
      !view_of(env, argv[6], &out) || p.type != napi_float32_array || m.type != napi_float32_array || v.type != napi_float32_array ||
      out.type != napi_float64_array || p.length < (size_t)P || p.length % (size_t)P != 0)
    THROW(env, "tensorMoments: p, m, v must be Float32Arrays and out a Float64Array");
  const size_t N = p.length / (size_t)P;
  if (m.length != (size_t)P * K * N || v.length != (size_t)P * N || out.length != (size_t)P * (1 + 3 * (K + 1)))
    THROW(env, "tensorMoments: m, v or out has the wrong length");
  if (lopt_tensor_moments(p.data, m.data, v.data, N, P, K, d[2], out.data) != 0) THROW(env, "tensorMoments: out of memory");
  return NULL;
}

// mlpLossAndGrads(header: Int32Array [P, B, L, activation, threads, dims[0..L]], readoutMult: number,
//   x: Float32Array [P·B·dims[0]], y: Int32Array [P·B], params: Float32Array[] (w_0, b_0, …),
//   grads: Float32Array[] (same layout, written), loss: Float32Array [P] (written)).
static napi_value MlpLossAndGrads(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) THROW(env, "mlpLossAndGrads: expected (header, readoutMult, x, y, params, grads, loss)");
  View h, x, y, loss;
  if (!view_of(env, argv[0], &h) || h.type != napi_int32_array || h.length < 7) THROW(env, "mlpLossAndGrads: header must be an Int32Array");
  const int32_t *hd = h.data;
  const int P = hd[0], B = hd[1], L = hd[2];
  if (P < 1 || B < 1 || L < 1 || L > 63 || hd[3] < 0 || hd[3] > 2 || h.length != (size_t)(6 + L)) THROW(env, "mlpLossAndGrads: inconsistent header");
  const int *dims = hd + 5;
  for (int l = 0; l <= L; l++)
    if (dims[l] < 1) THROW(env, "mlpLossAndGrads: dims must be positive");
  double mult;
  if (napi_get_value_double(env, argv[1], &mult) != napi_ok) THROW(env, "mlpLossAndGrads: readoutMult must be a number");
  if (!view_of(env, argv[2], &x) || x.type != napi_float32_array || x.length != (size_t)P * B * dims[0]) THROW(env, "mlpLossAndGrads: x has the wrong type or length");
  if (!view_of(env, argv[3], &y) || y.type != napi_int32_array || y.length != (size_t)P * B) THROW(env, "mlpLossAndGrads: y has the wrong type or length");
  if (!view_of(env, argv[6], &loss) || loss.type != napi_float32_array || loss.length != (size_t)P) THROW(env, "mlpLossAndGrads: loss has the wrong type or length");
  const float *w[64], *b[64];
  float *gw[64], *gb[64];
  for (int l = 0; l < L; l++) {
    const size_t wl = (size_t)P * dims[l] * dims[l + 1], bl = (size_t)P * dims[l + 1];
    View v;
    if (!element_view(env, argv[4], 2 * l, napi_float32_array, wl, &v)) THROW(env, "mlpLossAndGrads: a weight has the wrong type or length");
    w[l] = v.data;
    if (!element_view(env, argv[4], 2 * l + 1, napi_float32_array, bl, &v)) THROW(env, "mlpLossAndGrads: a bias has the wrong type or length");
    b[l] = v.data;
    if (!element_view(env, argv[5], 2 * l, napi_float32_array, wl, &v)) THROW(env, "mlpLossAndGrads: a weight gradient has the wrong type or length");
    gw[l] = v.data;
    if (!element_view(env, argv[5], 2 * l + 1, napi_float32_array, bl, &v)) THROW(env, "mlpLossAndGrads: a bias gradient has the wrong type or length");
    gb[l] = v.data;
  }
  MlpTaskArgs a = {P, B, L, hd[3], hd[4], dims, (float)mult, x.data, y.data, w, b, gw, gb, loss.data};
  lopt_mlp_loss_grads(&a);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"perParamStep", NULL, PerParamStep, NULL, NULL, NULL, napi_default_method, NULL},
      {"mlpLossAndGrads", NULL, MlpLossAndGrads, NULL, NULL, NULL, napi_default_method, NULL},
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default_method, NULL},
      {"tensorMoments", NULL, TensorMoments, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
