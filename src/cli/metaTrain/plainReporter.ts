// The meta-train log for when there is no terminal to draw on (CI, a pipe, a file): one line per
// event worth keeping, `key=value` fields in a fixed order, no escape codes and no carriage
// returns, so that the log reads the same in a file as on screen and greps cleanly:
//
//   run-start recipe=small arch=small_fc_lopt theta=1234 steps=200 start_step=0 backend=cpu workers=2 run_dir=runs/a resumed_from=- estimators="pes mlp-a,pes mlp-b"
//   workers n=2 threads=6 inner_steps/s=1801 list=gpu-a:41(4,12,1.2s),gpu-b:7(2,3,0.40s)   (with --queue: id(threads,units done,last seen))
//   step 10/200 meta_loss=1.2345 inner_loss=2.3012,1.9000 grad_norm=0.12 lr=3.0e-3 sigma=0.01 inner_steps/s=1234 step_time=1.2s eta=5m12s
//   checkpoint step=50 reason=steps path=runs/a/checkpoints/step-50
//   warning message="worker 1 restarted"
//   run-end status=done step=200 checkpoint=runs/a/checkpoints/step-200

import type { CheckpointEvent, MetaTrainListener, OuterStepEvent, RunEndEvent, RunStartEvent, WorkerStatus } from '../../meta/events.js';
import { printable } from '../../text/printable.js';
import { formatDuration, formatEta, formatLearningRate, formatLoss, formatRate, formatScalar, workerTotals } from './format.js';

export interface PlainReporterOptions {
  /** Receives one finished line at a time, without its trailing newline. */
  write: (line: string) => void;
  /** Print an outer step when its number is a multiple of this (the run's last step is always printed). */
  every: number;
}

/**
 * A field value as written: bare when it is a plain token, else JSON-quoted, which also turns any
 * control character (an ANSI escape in a warning, a newline) into visible text, keeping one event
 * on one line.
 */
export function fieldValue(value: string): string {
  // JSON.stringify leaves DEL and the C1 controls (e.g. the one-byte CSI \u009b) alone; escape those too.
  const quoted = () => JSON.stringify(value).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return value === '' || /[\s"'=\\\u0000-\u001f\u007f-\u009f]/.test(value) ? quoted() : value;
}

function fields(pairs: [string, string][]): string {
  return pairs.map(([key, value]) => `${key}=${fieldValue(value)}`).join(' ');
}

export function formatRunStart(e: RunStartEvent): string {
  // Only with --queue, so that a local run's line stays as it was.
  const queue: [string, string][] = e.queue !== undefined ? [['queue', e.queue]] : [];
  return `run-start ${fields([
    ['recipe', e.recipeName],
    ['arch', e.arch],
    ['theta', String(e.thetaSize)],
    ['steps', String(e.totalSteps)],
    ['start_step', String(e.startStep)],
    ['backend', e.backend],
    ['workers', String(e.workers)],
    ...queue,
    ['run_dir', e.runDir],
    ['resumed_from', e.resumedFrom ?? '-'],
    ['estimators', e.estimators.join(',')],
  ])}`;
}

export function formatOuterStep(e: OuterStepEvent): string {
  return `step ${e.step}/${e.totalSteps} ${fields([
    ['meta_loss', formatLoss(e.metaLoss)],
    ['inner_loss', e.innerLoss.map(formatLoss).join(',')],
    ['grad_norm', formatScalar(e.metaGradNorm)],
    ['lr', formatLearningRate(e.outerLr)],
    ['sigma', formatScalar(e.sigma)],
    ['inner_steps/s', formatRate(e.innerStepsPerSecond)],
    ['step_time', formatDuration(e.seconds)],
    ['eta', formatEta(e.etaSeconds)],
  ])}`;
}

export function formatCheckpoint(e: CheckpointEvent): string {
  return `checkpoint ${fields([
    ['step', String(e.step)],
    ['reason', e.reason],
    ['path', e.path],
  ])}`;
}

export function formatWorkers(workers: WorkerStatus[]): string {
  const total = workerTotals(workers);
  // Ids come over the network: printable escapes any control character before fieldValue quotes.
  const list = workers.map((w) => `${printable(w.id, 60)}(${w.threads},${w.unitsDone},${formatDuration(w.lastSeenSeconds)})`).join(',');
  return `workers ${fields([
    ['n', String(total.workers)],
    ['threads', String(total.threads)],
    ['inner_steps/s', formatRate(total.innerStepsPerSecond)],
    ['list', list === '' ? '-' : list],
  ])}`;
}

export function formatWarning(message: string): string {
  return `warning ${fields([['message', message]])}`;
}

export function formatRunEnd(e: RunEndEvent): string {
  const pairs: [string, string][] = [
    ['status', e.status],
    ['step', String(e.step)],
    ['checkpoint', e.checkpoint ?? '-'],
  ];
  if (e.error !== undefined) pairs.push(['error', e.error]);
  return `run-end ${fields(pairs)}`;
}

export function plainReporter({ write, every }: PlainReporterOptions): MetaTrainListener {
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`every must be a positive integer; got ${every}`);
  // The latest outer step when it has not been printed: a run that stops between two `every`
  // marks still logs where it stopped.
  let unprinted: OuterStepEvent | null = null;
  const flushStep = () => {
    if (unprinted !== null) write(formatOuterStep(unprinted));
    unprinted = null;
  };
  // The host reports its workers every ~2 s: log them when one joins or leaves, else once per
  // `every` outer steps, like the step lines.
  let step = 0;
  let workersKey: string | null = null;
  let workersPrintedAt = 0;

  return (event) => {
    switch (event.type) {
      case 'run-start':
        step = event.startStep;
        write(formatRunStart(event));
        break;
      case 'workers': {
        const key = JSON.stringify(event.workers.map((w) => w.id).sort());
        if (key !== workersKey || step - workersPrintedAt >= every) {
          workersKey = key;
          workersPrintedAt = step;
          write(formatWorkers(event.workers));
        }
        break;
      }
      case 'outer-step':
        step = event.step;
        // Absolute step numbers, so a resumed run logs the same steps as an uninterrupted one.
        if (event.step % every === 0 || event.step >= event.totalSteps) {
          unprinted = null;
          write(formatOuterStep(event));
        } else {
          unprinted = event;
        }
        break;
      case 'checkpoint':
        // A stop or final checkpoint comes after the run's last step: print that step first.
        if (event.reason === 'stop' || event.reason === 'final') flushStep();
        write(formatCheckpoint(event));
        break;
      case 'warning':
        write(formatWarning(event.message));
        break;
      case 'run-end':
        flushStep();
        write(formatRunEnd(event));
        break;
      default:
        // An event type added to the engine later: not worth a line until someone formats it.
        break;
    }
  };
}
