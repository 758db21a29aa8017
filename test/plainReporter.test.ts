import { describe, expect, it } from 'vitest';
import { formatDuration, formatLearningRate, formatLoss, formatRate, formatScalar } from '../src/cli/metaTrain/format.js';
import { plainReporter } from '../src/cli/metaTrain/plainReporter.js';
import { chooseReporter } from '../src/cli/metaTrain/reporter.js';
import type { MetaTrainEvent, WorkerStatus, WorkersEvent } from '../src/meta/events.js';
import { checkpoint, outerStep, runEnd, runStart, TOTAL_STEPS } from './helpers/metaTrainEvents.js';

function collect(every: number, events: MetaTrainEvent[]): string[] {
  const lines: string[] = [];
  const listener = plainReporter({ write: (line) => lines.push(line), every });
  for (const event of events) listener(event);
  return lines;
}

function fullRun(): MetaTrainEvent[] {
  const events: MetaTrainEvent[] = [runStart()];
  for (let step = 1; step <= TOTAL_STEPS; step++) {
    events.push(outerStep(step));
    if (step % 50 === 0) events.push(checkpoint(step, step === TOTAL_STEPS ? 'final' : 'steps'));
    if (step === 77) events.push({ type: 'warning', message: 'worker 3 restarted' });
  }
  events.push(runEnd(TOTAL_STEPS, 'done'));
  return events;
}

describe('plain meta-train reporter', () => {
  it('prints run-start, every N-th step, checkpoints, warnings and the end, in order', () => {
    const lines = collect(40, fullRun());
    const kinds = lines.map((l) => l.split(' ')[0] + (l.startsWith('step ') ? ` ${l.split(' ')[1]}` : ''));
    expect(kinds).toEqual([
      'run-start',
      'step 40/200',
      'checkpoint',
      'warning',
      'step 80/200',
      'checkpoint',
      'step 120/200',
      'checkpoint',
      'step 160/200',
      'step 200/200',
      'checkpoint',
      'run-end',
    ]);
  });

  it('writes clean key=value lines: no escape codes, no carriage returns, no newlines', () => {
    const events = fullRun();
    events.splice(3, 0, { type: 'warning', message: '\u001b[31mred\u001b[0m text\r\nsecond line \u009b1m' });
    for (const line of collect(1, events)) {
      expect(line).not.toMatch(/[\u001b\u009b\r\n]/);
    }
  });

  it('formats the step line', () => {
    const [line] = collect(10, [outerStep(10, { etaSeconds: 312 })]);
    expect(line).toBe('step 10/200 meta_loss=0.9889 inner_loss=2.2000,1.8500 grad_norm=0.12 lr=3.0e-3 sigma=0.01 inner_steps/s=1234 step_time=1.3s eta=5m12s');
  });

  it('formats run-start, checkpoint, warning and run-end lines, quoting values with spaces', () => {
    const lines = collect(10, [
      runStart({ resumedFrom: 'runs/old run/step-5', startStep: 5 }),
      checkpoint(50),
      { type: 'warning', message: 'a "quoted" word' },
      runEnd(51, 'failed', { checkpoint: null, error: 'out of memory' }),
    ]);
    expect(lines).toEqual([
      'run-start recipe=small-fc-mlp arch=small_fc_lopt theta=1234 steps=200 start_step=5 backend=tensorflow workers=4 ' +
        'run_dir=runs/small-fc-2024 resumed_from="runs/old run/step-5" ' +
        'estimators="pes mlp-mnist8-w32-d1-relu-b128-mup,pes mlp-fmnist8-w64-d2-relu-b128-mup"',
      'checkpoint step=50 reason=steps path=runs/small-fc-2024/checkpoints/step-50',
      'warning message="a \\"quoted\\" word"',
      'run-end status=failed step=51 checkpoint=- error="out of memory"',
    ]);
  });

  it('always prints the last step of a run stopped between two marks, before its stop checkpoint', () => {
    const events: MetaTrainEvent[] = [runStart()];
    for (let step = 1; step <= 23; step++) events.push(outerStep(step));
    events.push(checkpoint(23, 'stop'), runEnd(23, 'stopped'));
    const lines = collect(10, events);
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'run-start recipe=small-fc-mlp',
      'step 10/200',
      'step 20/200',
      'step 23/200',
      'checkpoint step=23',
      'run-end status=stopped',
    ]);
  });

  it('prints the last step once even when it is also a multiple of every', () => {
    const events: MetaTrainEvent[] = [runStart()];
    for (let step = 1; step <= 20; step++) events.push(outerStep(step));
    events.push(runEnd(20, 'stopped'));
    expect(collect(10, events).filter((l) => l.startsWith('step 20/'))).toHaveLength(1);
  });

  it('rejects a non-positive every', () => {
    expect(() => plainReporter({ write: () => undefined, every: 0 })).toThrow(RangeError);
    expect(() => plainReporter({ write: () => undefined, every: 2.5 })).toThrow(RangeError);
  });
});

describe('plain reporter with a queue', () => {
  const QUEUE = 'redis://10.0.0.5:6379/0';
  function worker(id: string, overrides: Partial<WorkerStatus> = {}): WorkerStatus {
    return { id, host: id.split(':')[0] ?? id, threads: 1, unitsDone: 0, lastSeenSeconds: 0, innerStepsPerSecond: 0, ...overrides };
  }
  const workers = (...list: WorkerStatus[]): WorkersEvent => ({ type: 'workers', workers: list });
  const a = worker('gpu-a:4242', { threads: 4, unitsDone: 17, lastSeenSeconds: 1.2, innerStepsPerSecond: 812.5 });
  const b = worker('gpu-b:77', { threads: 2, unitsDone: 5, lastSeenSeconds: 0.4, innerStepsPerSecond: 45.5 });

  it('prints queue= in run-start, after workers=', () => {
    const [line] = collect(10, [runStart({ workers: 0, queue: QUEUE })]);
    expect(line).toContain(' backend=tensorflow workers=0 queue=redis://10.0.0.5:6379/0 run_dir=runs/small-fc-2024 ');
  });

  it('formats the workers line, and an empty one', () => {
    expect(collect(10, [workers(a, b)])).toEqual(['workers n=2 threads=6 inner_steps/s=858 list=gpu-a:4242(4,17,1.2s),gpu-b:77(2,5,0.40s)']);
    expect(collect(10, [workers()])).toEqual(['workers n=0 threads=0 inner_steps/s=0.0 list=-']);
  });

  it('prints workers when one joins or leaves, else at most once every N outer steps', () => {
    const events: MetaTrainEvent[] = [runStart({ workers: 0, queue: QUEUE }), workers(a)];
    for (let step = 1; step <= 3; step++) events.push(outerStep(step), workers({ ...a, unitsDone: a.unitsDone + step }));
    events.push(workers(a, b)); // b joins
    events.push(workers(b, a)); // same set, another order
    events.push(workers(b)); // a leaves
    for (let step = 4; step <= 12; step++) events.push(outerStep(step), workers(b));
    events.push(outerStep(13), workers(b), workers(b));
    const lines = collect(10, events).filter((l) => l.startsWith('workers '));
    expect(lines.map((l) => l.replace(/ threads=.* list=/, ' list='))).toEqual([
      'workers n=1 list=gpu-a:4242(4,17,1.2s)',
      'workers n=2 list=gpu-a:4242(4,17,1.2s),gpu-b:77(2,5,0.40s)',
      'workers n=1 list=gpu-b:77(2,5,0.40s)',
      // Unchanged since step 3: printed again once 10 steps have passed, and only once.
      'workers n=1 list=gpu-b:77(2,5,0.40s)',
    ]);
    expect(
      collect(10, events)
        .filter((l) => l.startsWith('step '))
        .map((l) => l.split(' ')[1]),
    ).toEqual(['10/200']);
  });

  it('escapes control characters in worker ids', () => {
    const [line] = collect(10, [workers(worker('\u001b[2Jevil:1', { host: '\u001b[2Jevil' }))]);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(line).toBe('workers n=1 threads=1 inner_steps/s=0.0 list="\\\\u001b[2Jevil:1(1,0,0.00s)"');
  });
});

describe('number formatting', () => {
  it('formats losses, scales, learning rates, rates and durations', () => {
    expect(formatLoss(1.23456)).toBe('1.2346');
    expect(formatLoss(3.1416e-5)).toBe('3.142e-5');
    expect(formatLoss(Number.NaN)).toBe('nan');
    expect(formatLoss(Infinity)).toBe('inf');
    expect(formatScalar(0.12)).toBe('0.12');
    expect(formatScalar(0.0000251)).toBe('2.5e-5');
    expect(formatScalar(123456)).toBe('1.2e5');
    expect(formatLearningRate(3e-3)).toBe('3.0e-3');
    expect(formatLearningRate(1)).toBe('1.0e0');
    expect(formatRate(1234.4)).toBe('1234');
    expect(formatRate(12.34)).toBe('12.3');
    expect(formatDuration(0.42)).toBe('0.42s');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(312)).toBe('5m12s');
    expect(formatDuration(7380)).toBe('2h03m');
    expect(formatDuration(3 * 86_400 + 4 * 3600)).toBe('3d04h');
  });
});

describe('chooseReporter', () => {
  function fakeStdout(isTTY: boolean) {
    const written: string[] = [];
    const stdout = { isTTY, columns: 80, write: (s: string) => written.push(s) > 0, on: () => stdout, off: () => stdout };
    return { stdout: stdout as unknown as NodeJS.WriteStream, written };
  }
  const stdin = { isTTY: false } as unknown as NodeJS.ReadStream;

  it('uses the plain log when stdout is not a TTY, writing whole lines to stdout', async () => {
    const { stdout, written } = fakeStdout(false);
    const reporter = chooseReporter({ stdout, stdin, env: {}, every: 1, onStop: () => undefined });
    expect(reporter.kind).toBe('plain');
    reporter.listener(runStart());
    reporter.listener(outerStep(1));
    await reporter.close();
    expect(written).toHaveLength(2);
    expect(written[1]).toMatch(/^step 1\/200 meta_loss=\S+ .*\n$/);
  });

  it('uses the plain log on a TTY under CI', async () => {
    const { stdout } = fakeStdout(true);
    const reporter = chooseReporter({ stdout, stdin, env: { CI: 'true' }, every: 1, onStop: () => undefined });
    expect(reporter.kind).toBe('plain');
    await reporter.close();
  });
});
