// What the meta-trainer tells the outside world. The engine only emits these; the terminal
// dashboard and the plain log reporter (src/cli/metaTrain/) consume them.

/** Emitted once, before the first outer step (also on resume). */
export interface RunStartEvent {
  type: 'run-start';
  runDir: string;
  recipeName: string;
  /** Learned-optimizer architecture ('small_fc_lopt', 'mlp_lopt') and its meta-parameter count. */
  arch: string;
  thetaSize: number;
  totalSteps: number;
  /** The outer step the run starts from (0, or the resumed checkpoint's step). */
  startStep: number;
  resumedFrom: string | null;
  backend: string;
  workers: number;
  /** With `--queue`: the queue's URL, without credentials (units run on `lopt worker`s, not local workers). */
  queue?: string;
  /** One label per gradient estimator, e.g. 'pes mlp-mnist8-w32-d1-relu-b128-mup'. */
  estimators: string[];
}

/** Emitted after every outer step. */
export interface OuterStepEvent {
  type: 'outer-step';
  /** The number of outer steps done (1 after the first). */
  step: number;
  totalSteps: number;
  /** Mean meta-loss of the step's perturbed particles (normalized task loss, averaged over estimators). */
  metaLoss: number;
  /** Mean pre-update training loss (unnormalized) of the current particles, per estimator. */
  innerLoss: number[];
  /** Global norm of the averaged meta-gradient (before the outer optimizer's clipping). */
  metaGradNorm: number;
  /** Perturbation scale σ. */
  sigma: number;
  /** The outer optimizer's learning rate used at this step. */
  outerLr: number;
  /** Inner steps done in this outer step, summed over every population member. */
  innerSteps: number;
  /** Wall seconds of this outer step. */
  seconds: number;
  /** Inner steps per second over this step, population included (innerSteps / seconds). */
  innerStepsPerSecond: number;
  /**
   * Inner steps per second per worker over this step (one entry with workers = 0 or 1): the step's
   * throughput shared evenly, as the units of an estimator are equal and the pool balances them.
   */
  innerStepsPerSecondPerWorker: number[];
  /** Estimated seconds left, from the mean outer-step time so far; null until one step is done. */
  etaSeconds: number | null;
}

/** Emitted after a checkpoint is written. */
export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  path: string;
  /** Why it was written: 'steps' (every N), 'minutes' (every M), 'stop' (graceful stop), 'final'. */
  reason: 'steps' | 'minutes' | 'stop' | 'final';
}

/** Something the user should see that does not stop the run (a worker restarted, a corrupt checkpoint skipped…). */
export interface WarningEvent {
  type: 'warning';
  message: string;
}

/** Emitted once when the run ends, for whatever reason. */
export interface RunEndEvent {
  type: 'run-end';
  step: number;
  /** 'done': all steps; 'stopped': a graceful stop was requested; 'failed': an error ended it. */
  status: 'done' | 'stopped' | 'failed';
  /** The last checkpoint written (null when none). */
  checkpoint: string | null;
  error?: string;
}

/** One `lopt worker` as the host sees it through the queue. */
export interface WorkerStatus {
  /** host:pid of the worker process. */
  id: string;
  host: string;
  /** Units it runs at once (`--threads`). */
  threads: number;
  /** Units it has finished since it started (for any run). */
  unitsDone: number;
  /** Seconds since its last heartbeat. */
  lastSeenSeconds: number;
  /** Inner steps per second of this run's units it returned over the last minute (population members counted one by one). */
  innerStepsPerSecond: number;
}

/** With `--queue`: the workers connected to the queue, every few seconds and whenever one comes or goes. */
export interface WorkersEvent {
  type: 'workers';
  workers: WorkerStatus[];
}

export type MetaTrainEvent = RunStartEvent | OuterStepEvent | CheckpointEvent | WarningEvent | WorkersEvent | RunEndEvent;

export type MetaTrainListener = (event: MetaTrainEvent) => void;
