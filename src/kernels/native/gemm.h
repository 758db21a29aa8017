// Small dense products for the native kernels, vectorized along the output's columns.
#ifndef LOPT_GEMM_H
#define LOPT_GEMM_H
#include <stddef.h>

// C[m][n] (= if !accumulate, else +=) Σ_k A[m·sam + k·sak] · B[k·ldb + n], C row-major with ldc.
void lopt_gemm(int M, int N, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B, ptrdiff_t ldb, float *C,
               ptrdiff_t ldc, int accumulate);

#endif
