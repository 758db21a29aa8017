import { createHash, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { packr } from './codec.js';
import { CheckpointError } from './error.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint } from './format.js';
import { validateCheckpoint } from './validate.js';

/**
 * Writes `ckpt` to `path` atomically: the bytes go to a temp file in the same directory (so the
 * rename stays on one file system), are fsynced, and the temp file is renamed over `path`. A
 * crash or error at any point leaves the previous file at `path` as it was, and a failed write
 * removes its temp file. The checkpoint is validated first with the reader's rules, so a file
 * that loadCheckpoint would refuse is never written.
 */
export async function saveCheckpoint(path: string, ckpt: Checkpoint): Promise<void> {
  const bytes = sealCheckpoint(validateCheckpoint(ckpt, path));

  const dir = dirname(path);
  // Dot-prefixed and random so concurrent writers and directory listings don't collide with it.
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    const handle = await open(temp, 'wx', 0o644);
    created = true;
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    created = false;
  } catch (error) {
    if (created) await unlink(temp).catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new CheckpointError(path, undefined, `could not write the checkpoint (${reason}); any previous file there is unchanged`, { cause: error });
  }
  await syncDirectory(dir);
}

/** The current format's bytes: the checkpoint's msgpack as the payload of a checksummed envelope. */
export function sealCheckpoint(ckpt: Checkpoint): Uint8Array {
  const payload = packr.pack({ ...ckpt, version: CHECKPOINT_VERSION });
  const sha256 = createHash('sha256').update(payload).digest();
  return packr.pack({ format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, sha256: new Uint8Array(sha256), payload: new Uint8Array(payload) });
}

/** Makes the rename itself durable; best effort, as some platforms (Windows) cannot open a directory. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The file is complete and in place either way; only its durability across a power cut is weaker.
  }
}
