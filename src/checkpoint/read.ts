import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { packr, startsWithMap } from './codec.js';
import { checkMsgpackBounds, MsgpackBoundsError } from './msgpackBounds.js';
import { CheckpointError, printable } from './error.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, DEFAULT_MAX_BYTES, type Checkpoint } from './format.js';
import { validateCheckpoint } from './validate.js';

export interface LoadOptions {
  /** When given, the checkpoint must be for this architecture. */
  arch?: string;
  /** Files larger than this many bytes are refused without being read (default DEFAULT_MAX_BYTES, 256 MiB). */
  maxBytes?: number;
}

/**
 * Reads and fully validates a `*.lopt` file. A checkpoint is untrusted input: the size is checked
 * before anything is read, decoding errors are caught, and every field is checked (validate.ts)
 * before an object is returned. Any problem throws a CheckpointError naming the file and field.
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
  if (bytes.length === 0) throw new CheckpointError(path, undefined, 'the file is empty (0 bytes); not a lopt checkpoint');
  if (!startsWithMap(bytes)) {
    throw new CheckpointError(path, undefined, `not a lopt checkpoint: a checkpoint is a msgpack map, but the file starts with ${describeStart(bytes)}`);
  }

  const decoded = decode(path, bytes);
  const payload = openEnvelope(path, decoded);
  if (payload === null) return validateCheckpoint(decoded, path, options.arch === undefined ? {} : { arch: options.arch });
  const inner = decode(path, payload);
  if ((inner as { version?: unknown } | null)?.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(path, 'version', `the checksummed payload does not hold a version ${CHECKPOINT_VERSION} checkpoint`);
  }
  return validateCheckpoint(inner, path, options.arch === undefined ? {} : { arch: options.arch });
}

/**
 * msgpack → data, after a walk (msgpackBounds.ts) that bounds what decoding may allocate: a
 * hostile file is refused before msgpackr builds anything.
 */
function decode(path: string, bytes: Uint8Array): unknown {
  try {
    checkMsgpackBounds(bytes);
  } catch (error) {
    if (!(error instanceof MsgpackBoundsError)) throw error;
    const reason = printable(error.message, 200);
    const detail = error.incomplete
      ? `truncated or incomplete: the msgpack data ends early (${bytes.length} bytes; ${reason})`
      : `not a valid checkpoint: ${reason}`;
    throw new CheckpointError(path, undefined, detail, { cause: error });
  }
  try {
    return packr.unpack(bytes);
  } catch (error) {
    const reason = printable(error instanceof Error ? error.message : String(error), 200);
    // msgpackr flags running out of bytes mid-value (the usual sign of an interrupted copy) as
    // `incomplete`; it also flags any RangeError, which includes a stack overflow on hostile nesting.
    const incomplete = (error as { incomplete?: unknown } | null)?.incomplete === true;
    const detail = /call stack/i.test(reason)
      ? `not a valid checkpoint: the msgpack data is nested too deeply (${reason})`
      : incomplete
        ? `truncated or incomplete: the msgpack data ends early (${bytes.length} bytes; ${reason})`
        : `not a valid msgpack file (${reason})`;
    throw new CheckpointError(path, undefined, detail, { cause: error });
  }
}

const ENVELOPE_KEYS = ['format', 'version', 'sha256', 'payload'];

/**
 * A version-2 file's payload, its SHA-256 verified; null for a version-1 file (the checkpoint map
 * itself, no checksum). Anything else claiming version 2 is refused here.
 */
function openEnvelope(path: string, decoded: unknown): Uint8Array | null {
  const top = decoded as Record<string, unknown> | null;
  if (typeof top !== 'object' || top === null || top['version'] !== CHECKPOINT_VERSION || top['format'] !== CHECKPOINT_FORMAT) return null;
  const keys = Object.keys(top);
  if (keys.length !== ENVELOPE_KEYS.length || !ENVELOPE_KEYS.every((k) => keys.includes(k))) {
    throw new CheckpointError(
      path,
      undefined,
      `a version ${CHECKPOINT_VERSION} file holds exactly ${ENVELOPE_KEYS.join(', ')}; found ${keys
        .slice(0, 12)
        .map((k) => printable(k, 40))
        .join(', ')}`,
    );
  }
  const sha = top['sha256'];
  const payload = top['payload'];
  if (!(sha instanceof Uint8Array) || sha.length !== 32) throw new CheckpointError(path, 'sha256', 'expected 32 bytes (a SHA-256 digest)');
  if (!(payload instanceof Uint8Array)) throw new CheckpointError(path, 'payload', 'expected bytes (the msgpack of the checkpoint)');
  const actual = createHash('sha256').update(payload).digest();
  if (!actual.equals(Buffer.from(sha.buffer, sha.byteOffset, sha.length))) {
    throw new CheckpointError(
      path,
      'sha256',
      `checksum mismatch: the payload hashes to ${actual.toString('hex').slice(0, 16)}…, the file records ${Buffer.from(sha).toString('hex').slice(0, 16)}…; the file is corrupt`,
    );
  }
  return payload;
}

/** The whole file, refused by size (fs.stat) before any byte is read. */
async function readCapped(path: string, maxBytes: number): Promise<Uint8Array> {
  const refuse = (size: number): never => {
    throw new CheckpointError(
      path,
      undefined,
      `the file is ${size} bytes, over the ${maxBytes}-byte limit; refusing to read it (raise maxBytes if it is a trusted checkpoint)`,
    );
  };
  const info = await stat(path);
  if (!info.isFile()) throw new CheckpointError(path, undefined, 'not a regular file');
  if (info.size > maxBytes) refuse(info.size);

  const handle = await open(path, 'r');
  try {
    // Size again from the open handle: the path may have been replaced since the stat above.
    const size = (await handle.stat()).size;
    if (size > maxBytes) refuse(size);
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

function describeStart(bytes: Uint8Array): string {
  const b = bytes[0] as number;
  const hex = `byte 0x${b.toString(16).padStart(2, '0')}`;
  if (b === 0x7b || b === 0x5b) return `${hex} ('${String.fromCharCode(b)}'): this looks like JSON text`;
  if ((b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd) return `${hex} (a msgpack array)`;
  return hex;
}
