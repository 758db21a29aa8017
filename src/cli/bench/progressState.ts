// What the live view of `lopt bench` knows, folded from runBench's events. A pure reducer (the clock
// is passed in) plus a tiny store, in the manner of the meta-train dashboard: runBench pushes events
// from outside React, and the folding can be tested without rendering anything.
import { createEventStore, type EventStore } from '../eventStore.js';
import type { BenchEvent } from '../../evaluate/runBench.js';

/** How many finished runs the view lists; older ones are only counted. */
export const FINISHED_SHOWN = 5;

export interface RunningRun {
  index: number;
  task: string;
  optimizer: string;
  /** Clock time (milliseconds) of its run-start. */
  startedAt: number;
}

export interface FinishedRun {
  index: number;
  task: string;
  optimizer: string;
  seconds: number;
  cached: boolean;
  summary: string;
  /** `done` and `runs` as the run-done event gave them. */
  done: number;
  runs: number;
}

export interface BenchProgressState {
  /** Clock time (milliseconds) of bench-start, or null before it. */
  startedAt: number | null;
  /** All runs of the bench; grows when a learning-rate grid is extended. */
  runs: number;
  /** Runs with a result, including those found in the results folder. */
  done: number;
  /** Runs already done in the results folder when the bench started. */
  cachedAtStart: number;
  /** Runs in progress, in the order they started. */
  running: RunningRun[];
  /** The last FINISHED_SHOWN finished runs, oldest first. */
  finished: FinishedRun[];
  /** Runs computed by this bench (not read from the folder), and their total seconds: the ETA's mean. */
  computedCount: number;
  computedSeconds: number;
  /** Seconds left, or null until a run has finished. */
  etaSeconds: number | null;
}

export const initialBenchProgressState: BenchProgressState = {
  startedAt: null,
  runs: 0,
  done: 0,
  cachedAtStart: 0,
  running: [],
  finished: [],
  computedCount: 0,
  computedSeconds: 0,
  etaSeconds: null,
};

/** Mean seconds of the finished runs × runs left / runs in progress (at least 1); null before any finished. */
export function estimateEta(state: Pick<BenchProgressState, 'runs' | 'done' | 'running' | 'computedCount' | 'computedSeconds'>): number | null {
  if (state.computedCount === 0) return null;
  const mean = state.computedSeconds / state.computedCount;
  const remaining = Math.max(0, state.runs - state.done);
  return (mean * remaining) / Math.max(1, state.running.length);
}

/** Seconds since bench-start at clock time `now` (milliseconds); 0 before it. */
export function elapsedSeconds(state: BenchProgressState, now: number): number {
  return state.startedAt === null ? 0 : Math.max(0, (now - state.startedAt) / 1000);
}

function withEta(state: BenchProgressState): BenchProgressState {
  return { ...state, etaSeconds: estimateEta(state) };
}

/** The state after one event at clock time `now` (milliseconds). Pure: never mutates `state`. */
export function reduceBenchProgress(state: BenchProgressState, event: BenchEvent, now: number): BenchProgressState {
  switch (event.type) {
    case 'bench-start':
      return withEta({ ...initialBenchProgressState, startedAt: now, runs: event.runs, done: event.done, cachedAtStart: event.done });
    case 'run-start':
      return withEta({
        ...state,
        running: [
          ...state.running.filter((r) => r.index !== event.index),
          { index: event.index, task: event.task, optimizer: event.optimizer, startedAt: now },
        ],
      });
    case 'run-done': {
      const finished = [
        ...state.finished,
        {
          index: event.index,
          task: event.task,
          optimizer: event.optimizer,
          seconds: event.seconds,
          cached: event.cached,
          summary: event.summary,
          done: event.done,
          runs: event.runs,
        },
      ];
      return withEta({
        ...state,
        runs: event.runs,
        done: event.done,
        running: state.running.filter((r) => r.index !== event.index),
        finished: finished.slice(Math.max(0, finished.length - FINISHED_SHOWN)),
        computedCount: state.computedCount + (event.cached ? 0 : 1),
        computedSeconds: state.computedSeconds + (event.cached ? 0 : event.seconds),
      });
    }
    default:
      // An event type added to runBench later: ignore it rather than crash the view.
      return state;
  }
}

export type BenchProgressStore = EventStore<BenchProgressState, BenchEvent>;

/** `clock` gives the time in milliseconds (Date.now by default; tests pass their own). */
export function createBenchProgressStore(clock: () => number = Date.now, initial: BenchProgressState = initialBenchProgressState): BenchProgressStore {
  return createEventStore((state: BenchProgressState, event: BenchEvent) => reduceBenchProgress(state, event, clock()), initial);
}
