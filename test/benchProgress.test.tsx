import { vi } from 'vitest';

// ink renders only its last frame, and nothing after unmounting, when it detects CI (is-in-ci reads
// the environment once, at import): these tests are about the live view.
vi.hoisted(() => {
  process.env['CI'] = 'false';
});

import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import type { BenchEvent } from '../src/evaluate/runBench.js';
import { benchProgress, progressLine } from '../src/cli/bench/progressReporter.js';
import {
  createBenchProgressStore,
  elapsedSeconds,
  FINISHED_SHOWN,
  initialBenchProgressState,
  reduceBenchProgress,
  type BenchProgressState,
} from '../src/cli/bench/progressState.js';
import { BenchProgressView, REDRAW_MS } from '../src/cli/bench/progressView.js';
import { fakeTerminal } from './helpers/fakeTerminal.js';

/** Lets React commit the updates an event caused. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

const start = (runs: number, done = 0): BenchEvent => ({ type: 'bench-start', runs, done });
const runStart = (index: number, task = 'mlp-mnist', optimizer = 'adam'): BenchEvent => ({ type: 'run-start', task, optimizer, index });
const runDone = (index: number, done: number, runs: number, seconds = 10, task = 'mlp-mnist', optimizer = 'adam'): BenchEvent => ({
  type: 'run-done',
  task,
  optimizer,
  index,
  seconds,
  cached: false,
  done,
  runs,
  summary: `last-step loss (best member) 0.${index}234`,
});

function fold(events: [BenchEvent, number][]): BenchProgressState {
  return events.reduce((s, [e, t]) => reduceBenchProgress(s, e, t), initialBenchProgressState);
}

describe('bench progress state', () => {
  it('counts runs, tracks the running ones and keeps the last finished', () => {
    let s = fold([
      [start(4, 1), 1000],
      [runStart(1, 'a', 'adam'), 1000],
      [runStart(2, 'b', 'lars'), 2000],
    ]);
    expect(s).toMatchObject({ runs: 4, done: 1, cachedAtStart: 1, startedAt: 1000, etaSeconds: null });
    expect(s.running).toEqual([
      { index: 1, task: 'a', optimizer: 'adam', startedAt: 1000 },
      { index: 2, task: 'b', optimizer: 'lars', startedAt: 2000 },
    ]);
    expect(elapsedSeconds(s, 6000)).toBe(5);

    const before = s;
    s = reduceBenchProgress(s, runDone(1, 2, 4, 12, 'a', 'adam'), 13_000);
    expect(before.running).toHaveLength(2); // pure
    expect(s.done).toBe(2);
    expect(s.running.map((r) => r.index)).toEqual([2]);
    expect(s.finished).toEqual([
      expect.objectContaining({ index: 1, task: 'a', optimizer: 'adam', seconds: 12, summary: 'last-step loss (best member) 0.1234' }),
    ]);

    for (let i = 3; i < 3 + FINISHED_SHOWN + 2; i++) s = reduceBenchProgress(s, runDone(i, 2, 4), 20_000);
    expect(s.finished).toHaveLength(FINISHED_SHOWN);
    expect(s.finished.at(-1)!.index).toBe(2 + FINISHED_SHOWN + 2);
  });

  it('follows the growth of runs from later run-done events', () => {
    let s = fold([
      [start(2), 0],
      [runStart(0), 0],
      [runStart(1), 0],
      [runDone(0, 1, 2), 1000],
    ]);
    expect(s.runs).toBe(2);
    s = reduceBenchProgress(s, runStart(5), 1000); // a grid extension
    s = reduceBenchProgress(s, runDone(1, 2, 3), 2000);
    expect(s).toMatchObject({ runs: 3, done: 2 });
    expect(s.running.map((r) => r.index)).toEqual([5]);
  });

  it('estimates the time left as mean seconds × runs left / runs in progress', () => {
    let s = fold([
      [start(10, 2), 0],
      [runStart(0), 0],
      [runStart(1), 0],
      [runStart(2), 0],
    ]);
    expect(s.etaSeconds).toBeNull();
    s = reduceBenchProgress(s, runDone(0, 3, 10, 10), 10_000);
    // mean 10 s, 7 left, 2 running
    expect(s.etaSeconds).toBeCloseTo(35);
    s = reduceBenchProgress(s, runDone(1, 4, 10, 20), 20_000);
    // mean 15 s, 6 left, 1 running
    expect(s.etaSeconds).toBeCloseTo(90);
    s = reduceBenchProgress(s, runDone(2, 5, 10, 30), 30_000);
    // mean 20 s, 5 left, none running: parallelism counts as 1
    expect(s.etaSeconds).toBeCloseTo(100);
  });

  it('ignores unknown events', () => {
    const s = fold([[start(3), 0]]);
    expect(reduceBenchProgress(s, { type: 'later' } as unknown as BenchEvent, 5)).toBe(s);
  });
});

describe('bench progress view', () => {
  it('shows done/runs, the running runs with their time, and the finished runs; its timer goes on unmount', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let clock = 0;
    const now = () => clock;
    const store = createBenchProgressStore(now);
    const ui = render(<BenchProgressView store={store} now={now} />);
    const frame = () => ui.lastFrame() ?? '';
    await tick();
    expect(frame()).toContain('planning the runs');
    expect(vi.getTimerCount()).toBe(1);

    store.dispatch(start(6, 1));
    store.dispatch(runStart(1, 'mlp-mnist', 'adam'));
    store.dispatch(runStart(2, 'conv-cifar', 'lars'));
    await tick();
    expect(frame()).toContain('1/6');
    expect(frame()).toContain('16%');
    expect(frame()).toContain('adam on mlp-mnist');
    expect(frame()).toContain('lars on conv-cifar');

    clock = 3000;
    vi.advanceTimersByTime(REDRAW_MS);
    await tick();
    expect(frame()).toMatch(/adam on mlp-mnist\s+3\.0s/);

    clock = 12_000;
    store.dispatch(runDone(1, 2, 7, 12, 'mlp-mnist', 'adam'));
    await tick();
    expect(frame()).toContain('2/7');
    expect(frame()).toContain('last-step loss (best member) 0.1234');
    expect(frame()).not.toMatch(/running.*adam on mlp-mnist/);
    expect(frame()).toMatch(/running.*lars on conv-cifar/);
    expect(frame()).toContain('eta 1m00s'); // 12 s × 5 left / 1 running

    ui.unmount();
    await tick();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('benchProgress draws the view on a terminal and ends on close', async () => {
    const stdout = fakeTerminal();
    const write = vi.fn();
    const progress = benchProgress({ stdout: stdout as unknown as NodeJS.WriteStream, env: {}, write, patchConsole: false });
    expect(progress.kind).toBe('live');
    progress.listener(start(2));
    progress.listener(runStart(0));
    progress.listener(runDone(0, 1, 2));
    await progress.close();
    await progress.close(); // harmless twice
    const output = stdout.written.join('');
    expect(output).toContain('1/2');
    expect(output).toContain('last-step loss (best member) 0.0234');
    expect(write).not.toHaveBeenCalled();
  });
});

describe('bench progress, plain', () => {
  const events: BenchEvent[] = [start(3, 1), runStart(1, 'mlp-mnist', 'adam'), runDone(1, 2, 3, 12.34, 'mlp-mnist', 'adam')];
  const expected = [
    'bench: 3 runs (1 already done in this folder, kept)',
    '  start  adam on mlp-mnist',
    '  [2/3] adam on mlp-mnist: 12.3 s, last-step loss (best member) 0.1234',
  ];

  it('keeps the line format', () => {
    expect(events.map(progressLine)).toEqual(expected);
    expect(progressLine(start(3))).toBe('bench: 3 runs');
  });

  for (const [name, isTTY, env] of [
    ['off a terminal', false, {}],
    ['in CI', true, { CI: 'true' }],
  ] as const) {
    it(`writes plain lines ${name}, without escape codes`, async () => {
      const stdout = { isTTY, write: vi.fn() } as unknown as NodeJS.WriteStream;
      const lines: string[] = [];
      const progress = benchProgress({ stdout, env: { ...env }, write: (line) => lines.push(line) });
      expect(progress.kind).toBe('plain');
      for (const e of events) progress.listener(e);
      await progress.close();
      expect(lines).toEqual(expected);
      expect(lines.join('\n')).not.toContain('\u001b');
      expect(stdout.write).not.toHaveBeenCalled();
    });
  }
});
