// A minimal external store in the shape React's useSyncExternalStore expects: events in, folded
// by a pure reducer, subscribers told when the state changes. The terminal views use it.
export interface EventStore<S, E> {
  dispatch(event: E): void;
  getState(): S;
  subscribe(onChange: () => void): () => void;
}

export function createEventStore<S, E>(reduce: (state: S, event: E) => S, initial: S): EventStore<S, E> {
  let state = initial;
  const subscribers = new Set<() => void>();
  return {
    dispatch(event) {
      const next = reduce(state, event);
      if (next === state) return;
      state = next;
      for (const notify of subscribers) notify();
    },
    getState: () => state,
    subscribe(onChange) {
      subscribers.add(onChange);
      return () => {
        subscribers.delete(onChange);
      };
    },
  };
}
