import { vi } from 'vitest';

// ink renders only its last frame, and nothing after unmounting, when it detects CI (is-in-ci reads
// the environment once, at import): these tests are about the interactive dashboard.
vi.hoisted(() => {
  process.env['CI'] = 'false';
});

import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { MetaTrainDashboard, startDashboard } from '../src/cli/metaTrain/dashboard.js';
import { createDashboardStore, reduceDashboard, initialDashboardState, META_LOSS_HISTORY } from '../src/cli/metaTrain/dashboardState.js';
import { renderMetaLossChart } from '../src/cli/metaTrain/metaLossChart.js';
import type { WorkerStatus, WorkersEvent } from '../src/meta/events.js';
import { checkpoint, outerStep, runEnd, runStart } from './helpers/metaTrainEvents.js';
import { fakeTerminal } from './helpers/fakeTerminal.js';

/** Lets ink read stdin and React commit the updates it caused. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

afterEach(() => cleanup());

const QUEUE = 'redis://10.0.0.5:6379/0';

function worker(id: string, overrides: Partial<WorkerStatus> = {}): WorkerStatus {
  return { id, host: id.split(':')[0] ?? id, threads: 1, unitsDone: 0, lastSeenSeconds: 0, innerStepsPerSecond: 0, ...overrides };
}

function workers(...list: WorkerStatus[]): WorkersEvent {
  return { type: 'workers', workers: list };
}

function renderDashboard() {
  const store = createDashboardStore();
  const onStop = vi.fn();
  const onAbort = vi.fn();
  const ui = render(<MetaTrainDashboard store={store} onStop={onStop} onAbort={onAbort} />);
  return { store, onStop, onAbort, ui, frame: () => ui.lastFrame() ?? '' };
}

describe('meta-train dashboard', () => {
  it('shows the run, progress, meta-loss chart, figures, checkpoint and warnings', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart());
    await tick();
    expect(frame()).toContain('step 0/200');
    expect(frame()).toContain('waiting for the first outer step');

    for (let step = 1; step <= 30; step++) store.dispatch(outerStep(step));
    store.dispatch(checkpoint(30));
    store.dispatch(outerStep(31));
    store.dispatch({ type: 'warning', message: 'worker 2 restarted after a crash' });
    await tick();

    const text = frame();
    expect(text).toContain('recipe small-fc-mlp');
    expect(text).toContain('small_fc_lopt (1,234 meta-params)');
    expect(text).toContain('runs/small-fc-2024');
    expect(text).toContain('tensorflow · 4 workers');
    // Progress: counter, bar, ETA.
    expect(text).toContain('step 31/200');
    expect(text).toMatch(/█+░+ 15%/);
    expect(text).toContain('eta 3m31s');
    // The chart is drawn (axis and curve), not only the latest number.
    expect(text).toContain('meta-loss (last 31 steps)');
    expect(text).toContain('┤');
    expect(text).toMatch(/[╭╮╰╯]/);
    // Per-estimator inner loss, throughput, σ, lr, meta-gradient norm.
    expect(text).toContain('pes mlp-mnist8-w32-d1-relu-b128-mup');
    expect(text).toContain('1.9900');
    expect(text).toContain('1234 inner steps/s (population)');
    expect(text).toContain('per worker: 310 309 305 310');
    expect(text).toContain('σ 0.01 · lr 3.0e-3 · ‖meta-grad‖ 0.12');
    expect(text).toContain('step 30 · runs/small-fc-2024/checkpoints/step-30 (every N steps)');
    expect(text).toContain('worker 2 restarted after a crash');
    expect(text).toContain('press q to stop');
  });

  it('calls onStop once on q, says it is stopping, and shows the final status at run-end', async () => {
    const { store, onStop, onAbort, ui, frame } = renderDashboard();
    store.dispatch(runStart());
    store.dispatch(outerStep(1));
    await tick();

    ui.stdin.write('q');
    await tick();
    expect(onStop).toHaveBeenCalledTimes(1);
    expect(frame()).toContain('stopping after this step…');

    // Pressing again does not ask twice; Ctrl+C after a stop request is the way to quit now.
    ui.stdin.write('q');
    await tick();
    expect(onStop).toHaveBeenCalledTimes(1);
    expect(onAbort).not.toHaveBeenCalled();
    ui.stdin.write('\u0003');
    await tick();
    expect(onAbort).toHaveBeenCalledTimes(1);

    store.dispatch(checkpoint(1, 'stop'));
    store.dispatch(runEnd(1, 'stopped'));
    await tick();
    expect(frame()).toContain('■ stopped at step 1 · checkpoint runs/small-fc-2024/checkpoints/step-1');
    expect(frame()).not.toContain('stopping after this step');

    // Unmounted: later events draw nothing more.
    const framesAtEnd = ui.frames.length;
    store.dispatch(outerStep(2));
    await tick();
    expect(ui.frames.length).toBe(framesAtEnd);
  });

  it('treats the first Ctrl+C as a graceful stop', async () => {
    const { store, onStop, onAbort, ui } = renderDashboard();
    store.dispatch(runStart());
    await tick();
    ui.stdin.write('\u0003');
    await tick();
    expect(onStop).toHaveBeenCalledTimes(1);
    expect(onAbort).not.toHaveBeenCalled();
  });

  it('shows a failed run with its error', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart());
    store.dispatch(outerStep(1));
    store.dispatch(runEnd(1, 'failed', { checkpoint: null, error: 'out of memory' }));
    await tick();
    expect(frame()).toContain('✖ failed at step 1 · no checkpoint written');
    expect(frame()).toContain('out of memory');
  });

  it('startDashboard runs with a non-TTY stdin (no key input) and ends itself at run-end', async () => {
    const stdout = fakeTerminal();
    const stdin = new PassThrough(); // isTTY undefined: raw mode is not supported
    const onStop = vi.fn();
    const dashboard = startDashboard({
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
      stderr: stdout as unknown as NodeJS.WriteStream,
      onStop,
      patchConsole: false, // vitest's console is not Node's
    });
    dashboard.listener(runStart());
    for (let step = 1; step <= 5; step++) dashboard.listener(outerStep(step));
    dashboard.listener(checkpoint(5, 'final'));
    dashboard.listener(runEnd(5, 'done'));
    await dashboard.waitUntilExit();
    await dashboard.close(); // a second close after the end is harmless

    const output = stdout.written.join('');
    expect(output).toContain('✔ done at step 5');
    expect(output).not.toContain('press q'); // no keys are read, so no hint
    expect(onStop).not.toHaveBeenCalled();
  });

  it('close() unmounts a dashboard whose run never ended', async () => {
    const stdout = Object.assign(new EventEmitter(), { isTTY: true, columns: 80, write: () => true });
    const dashboard = startDashboard({
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: new PassThrough() as unknown as NodeJS.ReadStream,
      stderr: stdout as unknown as NodeJS.WriteStream,
      onStop: () => undefined,
      patchConsole: false,
    });
    dashboard.listener(runStart());
    await dashboard.close();
    await expect(dashboard.waitUntilExit()).resolves.toBeUndefined();
  });
});

describe('meta-train dashboard with a queue', () => {
  it('says units run through the queue and lists each worker with a total row', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart({ workers: 0, queue: QUEUE }));
    await tick();
    expect(frame()).toContain(`tensorflow · units run on lopt workers via ${QUEUE}`);
    expect(frame()).not.toContain('0 workers');

    store.dispatch(
      workers(
        worker('gpu-b:77', { threads: 2, unitsDone: 5, lastSeenSeconds: 0.4, innerStepsPerSecond: 45.5 }),
        worker('gpu-a:4242', { threads: 4, unitsDone: 17, lastSeenSeconds: 1.2, innerStepsPerSecond: 812.5 }),
      ),
    );
    await tick();
    const text = frame();
    expect(text).toMatch(/id\s+threads\s+units\s+last seen\s+inner steps\/s/);
    expect(text).toMatch(/gpu-a:4242\s+4\s+17\s+1\.2s ago\s+813\n/);
    expect(text).toMatch(/gpu-b:77\s+2\s+5\s+0\.40s ago\s+45\.5\n/);
    // Sorted by id, so rows keep their place from one report to the next.
    expect(text.indexOf('gpu-a:4242')).toBeLessThan(text.indexOf('gpu-b:77'));
    expect(text).toMatch(/total \(2 workers\)\s+6\s+858/);
    expect(text).not.toContain('no workers connected');
  });

  it('tells how to start a worker when none is connected', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart({ workers: 0, queue: QUEUE }));
    await tick();
    expect(frame()).not.toContain('no workers connected'); // no report yet: nothing is known
    store.dispatch(workers(worker('gpu-a:1')));
    store.dispatch(workers());
    await tick();
    expect(frame()).toContain(`no workers connected — start one with: lopt worker --queue ${QUEUE}`);
    expect(frame()).not.toContain('gpu-a:1');
  });

  it('lists the first 12 workers and counts the rest, in the total too', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart({ workers: 0, queue: QUEUE }));
    const many = Array.from({ length: 15 }, (_, i) => worker(`node-${String(i).padStart(2, '0')}:1`, { threads: 2, innerStepsPerSecond: 10 }));
    store.dispatch(workers(...many));
    await tick();
    const text = frame();
    expect(text).toContain('node-11:1');
    expect(text).not.toContain('node-12:1');
    expect(text).toContain('… and 3 more');
    expect(text).toMatch(/total \(15 workers\)\s+30\s+150\n/);
  });

  it('escapes control characters in worker ids and the queue URL', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart({ workers: 0, queue: 'redis://q\u0007:6379/0' }));
    store.dispatch(workers(worker('\u001b[2Jevil:1', { host: '\u001b]0;title\u0007' })));
    await tick();
    const text = frame();
    expect(text).toContain('\\u001b[2Jevil:1');
    expect(text).toContain('redis://q\\u0007:6379/0');
    expect(text).not.toContain('\u001b[2J');
    expect(text).not.toContain('\u0007');
    const state = store.getState();
    expect(state.workers?.[0]?.host).toBe('\\u001b]0;title\\u0007');
  });

  it('shows no workers section without a queue', async () => {
    const { store, frame } = renderDashboard();
    store.dispatch(runStart());
    store.dispatch(workers());
    await tick();
    expect(frame()).toContain('tensorflow · 4 workers');
    expect(frame()).not.toContain('no workers connected');
  });
});

describe('dashboard state and chart', () => {
  it('keeps the last META_LOSS_HISTORY meta-losses and the last three warnings', () => {
    let state = initialDashboardState;
    for (let step = 1; step <= META_LOSS_HISTORY + 20; step++) state = reduceDashboard(state, outerStep(step, { metaLoss: step }));
    for (let i = 1; i <= 5; i++) state = reduceDashboard(state, { type: 'warning', message: `w${i}` });
    expect(state.metaLossHistory).toHaveLength(META_LOSS_HISTORY);
    expect(state.metaLossHistory[0]).toBe(21);
    expect(state.warnings).toEqual(['w3', 'w4', 'w5']);
    expect(state.warningCount).toBe(5);
    expect(state.elapsedSeconds).toBeCloseTo((META_LOSS_HISTORY + 20) * 1.25);
  });

  it('draws a chart of the given height and skips non-finite values', () => {
    const chart = renderMetaLossChart([3, 2, Number.NaN, 1.5, 1, Infinity, 0.8], 100, 8);
    expect(chart).not.toBeNull();
    const lines = chart!.split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(8);
    expect(lines.length).toBeLessThanOrEqual(10);
    expect(chart).toContain('3.0000');
    expect(chart).toContain('0.8000');
    expect(chart).not.toContain('NaN');
    expect(renderMetaLossChart([Number.NaN], 100, 8)).toBeNull();
  });
});
