// A `*.lopt` checkpoint from its bytes: what loadCheckpoint (read.ts) does after reading a file, and
// what a browser does after fetch(). No Node APIs: the checksum is WebCrypto's SHA-256.
import { packr, startsWithMap } from './codec.js';
import { checkMsgpackBounds, MsgpackBoundsError } from './msgpackBounds.js';
import { CheckpointError, printable } from './error.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, DEFAULT_MAX_BYTES, type Checkpoint } from './format.js';
import { validateCheckpoint } from './validate.js';

export interface LoadOptions {
  /** When given, the checkpoint must be for this architecture. */
  arch?: string;
  /** Checkpoints larger than this many bytes are refused without being decoded (default DEFAULT_MAX_BYTES, 256 MiB). */
  maxBytes?: number;
}

/** The size limit's message, shared by the file reader and the byte decoder. */
export function tooLarge(label: string, size: number | string, maxBytes: number): CheckpointError {
  return new CheckpointError(
    label,
    undefined,
    `the file is ${size} bytes, over the ${maxBytes}-byte limit; refusing to read it (raise maxBytes if it is a trusted checkpoint)`,
  );
}

/**
 * Decodes and fully validates checkpoint bytes. They are untrusted input: the size is checked first,
 * decoding is bounded and its errors caught, a version-2 checksum is verified, and every field is
 * checked (validate.ts) before an object is returned. Any problem throws a CheckpointError naming
 * `label` (a path, a URL, a file name) and the field.
 */
export async function decodeCheckpoint(bytes: Uint8Array, label: string, options: LoadOptions = {}): Promise<Checkpoint> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) throw tooLarge(label, bytes.length, maxBytes);
  if (bytes.length === 0) throw new CheckpointError(label, undefined, 'the file is empty (0 bytes); not a lopt checkpoint');
  if (!startsWithMap(bytes)) {
    throw new CheckpointError(label, undefined, `not a lopt checkpoint: a checkpoint is a msgpack map, but the file starts with ${describeStart(bytes)}`);
  }
  const arch = options.arch === undefined ? {} : { arch: options.arch };
  const decoded = decode(label, bytes);
  const payload = await openEnvelope(label, decoded);
  if (payload === null) return validateCheckpoint(decoded, label, arch);
  const inner = decode(label, payload);
  if ((inner as { version?: unknown } | null)?.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(label, 'version', `the checksummed payload does not hold a version ${CHECKPOINT_VERSION} checkpoint`);
  }
  return validateCheckpoint(inner, label, arch);
}

/**
 * msgpack → data, after a walk (msgpackBounds.ts) that bounds what decoding may allocate: a
 * hostile file is refused before msgpackr builds anything.
 */
function decode(label: string, bytes: Uint8Array): unknown {
  try {
    checkMsgpackBounds(bytes);
  } catch (error) {
    if (!(error instanceof MsgpackBoundsError)) throw error;
    const reason = printable(error.message, 200);
    const detail = error.incomplete
      ? `truncated or incomplete: the msgpack data ends early (${bytes.length} bytes; ${reason})`
      : `not a valid checkpoint: ${reason}`;
    throw new CheckpointError(label, undefined, detail, { cause: error });
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
    throw new CheckpointError(label, undefined, detail, { cause: error });
  }
}

const ENVELOPE_KEYS = ['format', 'version', 'sha256', 'payload'];

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * A version-2 file's payload, its SHA-256 verified; null for a version-1 file (the checkpoint map
 * itself, no checksum). Anything else claiming version 2 is refused here.
 */
async function openEnvelope(label: string, decoded: unknown): Promise<Uint8Array | null> {
  const top = decoded as Record<string, unknown> | null;
  if (typeof top !== 'object' || top === null || top['version'] !== CHECKPOINT_VERSION || top['format'] !== CHECKPOINT_FORMAT) return null;
  const keys = Object.keys(top);
  if (keys.length !== ENVELOPE_KEYS.length || !ENVELOPE_KEYS.every((k) => keys.includes(k))) {
    throw new CheckpointError(
      label,
      undefined,
      `a version ${CHECKPOINT_VERSION} file holds exactly ${ENVELOPE_KEYS.join(', ')}; found ${keys
        .slice(0, 12)
        .map((k) => printable(k, 40))
        .join(', ')}`,
    );
  }
  const sha = top['sha256'];
  const payload = top['payload'];
  if (!(sha instanceof Uint8Array) || sha.length !== 32) throw new CheckpointError(label, 'sha256', 'expected 32 bytes (a SHA-256 digest)');
  if (!(payload instanceof Uint8Array)) throw new CheckpointError(label, 'payload', 'expected bytes (the msgpack of the checkpoint)');
  // A copy: digest() wants a buffer of its own (the payload is a view into the file's bytes).
  const actual = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', payload.slice()));
  if (!actual.every((b, i) => b === sha[i])) {
    throw new CheckpointError(
      label,
      'sha256',
      `checksum mismatch: the payload hashes to ${hex(actual).slice(0, 16)}…, the file records ${hex(sha).slice(0, 16)}…; the file is corrupt`,
    );
  }
  return payload;
}

function describeStart(bytes: Uint8Array): string {
  const b = bytes[0] as number;
  const hexByte = `byte 0x${b.toString(16).padStart(2, '0')}`;
  if (b === 0x7b || b === 0x5b) return `${hexByte} ('${String.fromCharCode(b)}'): this looks like JSON text`;
  if ((b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd) return `${hexByte} (a msgpack array)`;
  return hexByte;
}
