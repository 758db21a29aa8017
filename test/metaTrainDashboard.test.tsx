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
import { checkpoint, outerStep, runEnd, runStart } from './helpers/metaTrainEvents.js';
import { fakeTerminal } from './helpers/fakeTerminal.js';

/** Lets ink read stdin and React commit the updates it caused. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

afterEach(() => cleanup());

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
