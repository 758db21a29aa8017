// The results of `lopt bench`: what the report, the README table and the model cards read.
// Plain JSON (results.json in the bench's output folder); losses are null where a run diverged.

/** One learning rate of a baseline's grid (all seeds of it ran as one population). */
export interface GridPoint {
  lr: number;
  /** Mean over seeds of the final parameters' inner-valid loss: the selection criterion (null: diverged). */
  innerValidLoss: number | null;
  /** Mean over seeds of the smoothed final training loss (null: diverged). */
  finalTrainLoss: number | null;
  /** First step at which any seed's loss was NaN/Inf, or null. */
  divergedAt: number | null;
}

/** A point of a training curve: the training loss smoothed over a window, mean over seeds. */
export interface CurvePoint {
  step: number;
  loss: number | null;
}

export interface OptimizerResult {
  /** 'adam', 'nesterov', …, or 'lopt:<checkpoint name or path>'. */
  optimizer: string;
  kind: 'baseline' | 'learned';
  /** A baseline tuned over a grid (false for `name@lr`, one untuned learning rate, and for learned optimizers). */
  tuned: boolean;
  /** Baselines: every learning rate tried; learned optimizers: empty (one trial). */
  grid: GridPoint[];
  /** The learning rate selected on inner-valid (null for learned optimizers, or when every point diverged). */
  selectedLr: number | null;
  /** The selection sits at an end of the grid even after every allowed extension: tuning may be incomplete. */
  selectedAtGridEdge: boolean;
  /** The selected run (or the learned optimizer's only run) diverged; its losses below are null. */
  diverged: boolean;
  divergedAt: number | null;
  /** Smoothed training loss at the last step, mean over seeds. */
  finalTrainLoss: number | null;
  /** Lowest smoothed training loss over the run. */
  bestTrainLoss: number | null;
  testLoss: number | null;
  /** Test accuracy for classification tasks (null otherwise or when diverged). */
  testAccuracy: number | null;
  /** The task's own held-out metrics (e.g. a preference task's reward margin), mean over seeds; absent when it has none or diverged. */
  testMetrics?: Record<string, number>;
  /**
   * Steps tuned Adam needs to reach this run's final training loss (its lower envelope over its
   * learning rates), divided by this run's steps (1 for Adam itself). null when diverged.
   */
  speedupOverAdam: number | null;
  /** Tuned Adam never reached that loss within the run's steps: speedupOverAdam is a lower bound (1). */
  speedupIsLowerBound: boolean;
  /** The selected run's smoothed training curve (at most 200 points). */
  curve: CurvePoint[];
  /** Wall seconds of all its runs (the whole grid for a baseline). */
  seconds: number;
}

export interface TaskResult {
  task: string;
  /** Generalization axis from the suite ('width', 'depth', 'horizon', 'batch', 'dataset', 'architecture', …) or null. */
  axis: string | null;
  /** Multiple of the meta-training setting along that axis (×4 width, ×25 horizon, …) or null. */
  factor: number | null;
  steps: number;
  family: string;
  width: number | null;
  depth: number | null;
  batchSize: number;
  parametrization: 'mup' | 'sp';
  results: OptimizerResult[];
  /** Tuned Adam's lower envelope over its learning rates (smoothed), for speedups and plots. */
  adamEnvelope: CurvePoint[];
}

export interface BenchResults {
  format: 'lopt-bench';
  version: 1;
  suite: string;
  createdAt: string;
  backend: string;
  seeds: number;
  /** Grid points per tuned baseline before extensions (log-spaced, half a decade apart). */
  budget: number;
  /** Times a grid may be extended by two points past an end that holds the optimum. */
  maxGridExtensions: number;
  optimizers: string[];
  tasks: TaskResult[];
}
