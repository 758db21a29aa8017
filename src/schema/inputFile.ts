import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { printable } from '../text/printable.js';

/**
 * The text of a small input file (a recipe, a suite), read only if it is a regular file of at
 * most `maxBytes`: a device such as /dev/zero, a FIFO or a huge file is refused before any byte
 * is read, instead of being read until memory runs out. Errors name `what`, the path and the limit.
 */
export function readInputText(path: string, what: string, maxBytes: number): string {
  const name = `${what} ${printable(path, 200)}`;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(`${name}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new Error(`${name}: not a regular file`);
    if (info.size > maxBytes) throw new Error(`${name}: ${info.size} bytes; a ${what} file may hold at most ${maxBytes}`);
    // Read at most maxBytes + 1: a file that grew since fstat is refused too.
    const buffer = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, buffer, filled, buffer.length - filled, null);
      if (n === 0) break;
      filled += n;
      if (filled > maxBytes) throw new Error(`${name}: more than ${maxBytes} bytes; a ${what} file may hold at most ${maxBytes}`);
    }
    return buffer.subarray(0, filled).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
