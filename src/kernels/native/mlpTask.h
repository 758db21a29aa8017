// The image-MLP task's loss and gradients for a population (tasks/mlp.ts): see mlpTask.c.
#ifndef LOPT_MLP_TASK_H
#define LOPT_MLP_TASK_H
#include <stdint.h>

enum { ACT_RELU = 0, ACT_TANH = 1, ACT_GELU = 2 };

typedef struct {
  int population, batch, layers, activation, threads;
  const int *dims;        // [layers + 1]: input, hidden…, classes
  float readoutMult;      // μP: 1/fan_in of the readout; SP: 1
  const float *x;         // [P][B][dims[0]]
  const int32_t *y;       // [P][B]
  const float *const *w;  // per layer [P][in][out]
  const float *const *b;  // per layer [P][out]
  float *const *gw;       // per layer [P][in][out], written
  float *const *gb;       // per layer [P][out], written
  float *loss;            // [P], written
} MlpTaskArgs;

void lopt_mlp_loss_grads(const MlpTaskArgs *args);

#endif
