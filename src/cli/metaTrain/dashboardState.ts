// What the dashboard knows about the run, folded from the trainer's events. A plain reducer plus a
// tiny store (rather than React state inside the component) so that the trainer can push events
// from outside React, and so that the folding can be tested without rendering anything.
import { createEventStore, type EventStore } from '../eventStore.js';
import type { CheckpointEvent, MetaTrainEvent, OuterStepEvent, RunEndEvent, RunStartEvent, WorkerStatus } from '../../meta/events.js';
import { printable } from '../../text/printable.js';

/** How many meta-loss values the chart keeps; the chart itself may show fewer on a narrow terminal. */
export const META_LOSS_HISTORY = 100;
/** How many warnings the dashboard lists; older ones are only counted. */
export const WARNINGS_SHOWN = 3;

export interface DashboardState {
  run: RunStartEvent | null;
  /** The latest outer step, or null before the first one. */
  lastStep: OuterStepEvent | null;
  /** Meta-loss of the last META_LOSS_HISTORY outer steps, oldest first. */
  metaLossHistory: number[];
  /** Wall seconds of the outer steps seen by this process (a resumed run starts again from 0). */
  elapsedSeconds: number;
  lastCheckpoint: CheckpointEvent | null;
  /** The last WARNINGS_SHOWN warnings, oldest first. */
  warnings: string[];
  warningCount: number;
  /** With a queue: the workers of the latest report, sorted by id; null until the first report. */
  workers: WorkerStatus[] | null;
  end: RunEndEvent | null;
}

export const initialDashboardState: DashboardState = {
  run: null,
  lastStep: null,
  metaLossHistory: [],
  elapsedSeconds: 0,
  lastCheckpoint: null,
  warnings: [],
  warningCount: 0,
  workers: null,
  end: null,
};

function keepLast<T>(items: T[], item: T, count: number): T[] {
  const next = [...items, item];
  return next.length > count ? next.slice(next.length - count) : next;
}

/** The state after one event. Pure: returns a new object, never mutates `state`. */
export function reduceDashboard(state: DashboardState, event: MetaTrainEvent): DashboardState {
  switch (event.type) {
    case 'run-start':
      // Names and paths come from files and the command line: escaped once, here, for the screen.
      return {
        ...state,
        run: {
          ...event,
          recipeName: printable(event.recipeName, 80),
          runDir: printable(event.runDir, 200),
          resumedFrom: event.resumedFrom === null ? null : printable(event.resumedFrom, 200),
          estimators: event.estimators.map((label) => printable(label, 200)),
          ...(event.queue !== undefined ? { queue: printable(event.queue, 200) } : {}),
        },
      };
    case 'outer-step':
      return {
        ...state,
        lastStep: event,
        metaLossHistory: keepLast(state.metaLossHistory, event.metaLoss, META_LOSS_HISTORY),
        elapsedSeconds: state.elapsedSeconds + event.seconds,
      };
    case 'checkpoint':
      return { ...state, lastCheckpoint: event };
    case 'warning':
      return {
        ...state,
        warnings: keepLast(state.warnings, printable(event.message, 1000), WARNINGS_SHOWN),
        warningCount: state.warningCount + 1,
      };
    case 'workers':
      // Ids and host names come over the network from any process that can reach the queue.
      // Sorted so that rows keep their place from one report to the next.
      return {
        ...state,
        workers: event.workers
          .map((w) => ({ ...w, id: printable(w.id, 60), host: printable(w.host, 60) }))
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      };
    case 'run-end':
      return { ...state, end: event };
    default:
      // An event type added to the engine later: ignore it rather than crash the display.
      return state;
  }
}

export type DashboardStore = EventStore<DashboardState, MetaTrainEvent>;

export function createDashboardStore(initial: DashboardState = initialDashboardState): DashboardStore {
  return createEventStore(reduceDashboard, initial);
}
