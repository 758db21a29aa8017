import { EventEmitter } from 'node:events';

/** A stdout that says it is a 100×40 terminal and keeps what is written to it. */
export function fakeTerminal() {
  return Object.assign(new EventEmitter(), {
    isTTY: true,
    columns: 100,
    rows: 40,
    written: [] as string[],
    write(chunk: string) {
      this.written.push(chunk);
      return true;
    },
  });
}
