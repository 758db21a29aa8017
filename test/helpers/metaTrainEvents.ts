// A realistic, deterministic sequence of meta-train events for the reporter tests.

import type { CheckpointEvent, OuterStepEvent, RunEndEvent, RunStartEvent } from '../../src/meta/events.js';

export const TOTAL_STEPS = 200;

export function runStart(overrides: Partial<RunStartEvent> = {}): RunStartEvent {
  return {
    type: 'run-start',
    runDir: 'runs/small-fc-2024',
    recipeName: 'small-fc-mlp',
    arch: 'small_fc_lopt',
    thetaSize: 1234,
    totalSteps: TOTAL_STEPS,
    startStep: 0,
    resumedFrom: null,
    backend: 'tensorflow',
    workers: 4,
    estimators: ['pes mlp-mnist8-w32-d1-relu-b128-mup', 'pes mlp-fmnist8-w64-d2-relu-b128-mup'],
    ...overrides,
  };
}

/** Outer step `step`: a meta-loss that falls with a wobble, so the chart has a real curve to draw. */
export function outerStep(step: number, overrides: Partial<OuterStepEvent> = {}): OuterStepEvent {
  const seconds = 1.25;
  return {
    type: 'outer-step',
    step,
    totalSteps: TOTAL_STEPS,
    metaLoss: 0.4 + 1.2 * Math.exp(-step / 15) + 0.05 * Math.sin(step),
    innerLoss: [2.3 - step * 0.01, 1.9 - step * 0.005],
    metaGradNorm: 0.12,
    sigma: 0.01,
    outerLr: 3e-3,
    innerSteps: 1543,
    seconds,
    innerStepsPerSecond: 1234.4,
    innerStepsPerSecondPerWorker: [310.2, 308.9, 305, 310.3],
    etaSeconds: (TOTAL_STEPS - step) * seconds,
    ...overrides,
  };
}

export function checkpoint(step: number, reason: CheckpointEvent['reason'] = 'steps'): CheckpointEvent {
  return { type: 'checkpoint', step, path: `runs/small-fc-2024/checkpoints/step-${step}`, reason };
}

export function runEnd(step: number, status: RunEndEvent['status'], overrides: Partial<RunEndEvent> = {}): RunEndEvent {
  return { type: 'run-end', step, status, checkpoint: `runs/small-fc-2024/checkpoints/step-${step}`, ...overrides };
}
