import { open, stat } from 'node:fs/promises';
import { decodeCheckpoint, tooLarge, type LoadOptions } from './decode.js';
import { CheckpointError } from './error.js';
import { DEFAULT_MAX_BYTES, type Checkpoint } from './format.js';

export type { LoadOptions } from './decode.js';

/**
 * Reads and fully validates a `*.lopt` file: the size is checked before anything is read, then
 * the bytes are decoded as decodeCheckpoint does. Any problem throws a CheckpointError naming the
 * file and field.
 */
export async function loadCheckpoint(path: string, options: LoadOptions = {}): Promise<Checkpoint> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let bytes: Uint8Array;
  try {
    bytes = await readCapped(path, maxBytes);
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(path, undefined, `cannot read the checkpoint (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  return decodeCheckpoint(bytes, path, options);
}

/** The whole file, refused by size (fs.stat) before any byte is read. */
async function readCapped(path: string, maxBytes: number): Promise<Uint8Array> {
  const info = await stat(path);
  if (!info.isFile()) throw new CheckpointError(path, undefined, 'not a regular file');
  if (info.size > maxBytes) throw tooLarge(path, info.size, maxBytes);

  const handle = await open(path, 'r');
  try {
    // Size again from the open handle: the path may have been replaced since the stat above.
    const size = (await handle.stat()).size;
    if (size > maxBytes) throw tooLarge(path, size, maxBytes);
    const bytes = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(bytes, filled, size - filled, filled);
      if (bytesRead === 0) break; // shrank while reading: decode sees the bytes that are there
      filled += bytesRead;
    }
    return bytes.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
