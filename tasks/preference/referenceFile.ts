// The on-disk form of a cached reference model, read as untrusted input: a file that is short,
// long, foreign, garbled or non-finite is refused (null, with the reason), never half-trusted.
//
// Layout: 8 bytes magic 'LOPTREF1', u32 LE header length h (≤ MAX_HEADER_BYTES), h bytes of UTF-8
// JSON { format, key, tensors: [{ name, shape }], payloadBytes, payloadSha256 }, then the
// payload: every tensor's float32 values, little-endian, in the header's order.
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';

const MAGIC = Buffer.from('LOPTREF1', 'ascii');
export const REFERENCE_FILE_FORMAT = 1;
const MAX_HEADER_BYTES = 1 << 16;
const PREFIX_BYTES = MAGIC.length + 4;

export interface TensorValues {
  name: string;
  shape: readonly number[];
  values: Float32Array;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const sizeOf = (shape: readonly number[]): number => shape.reduce((n, k) => n * k, 1);

/** Float32 bytes are written as the machine holds them: only little-endian machines use the disk cache. */
export const diskCacheUsable = (): boolean => endianness() === 'LE';

/** The largest file a reference with these tensors can be: reading stops before anything longer. */
export function maxReferenceFileBytes(expected: readonly { shape: readonly number[] }[]): number {
  return PREFIX_BYTES + MAX_HEADER_BYTES + 4 * expected.reduce((n, t) => n + sizeOf(t.shape), 0);
}

export function encodeReferenceFile(key: string, tensors: readonly TensorValues[]): Buffer {
  const payload = Buffer.concat(tensors.map((t) => Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength)));
  const header = Buffer.from(
    JSON.stringify({
      format: REFERENCE_FILE_FORMAT,
      key,
      tensors: tensors.map((t) => ({ name: t.name, shape: [...t.shape] })),
      payloadBytes: payload.length,
      payloadSha256: sha256(payload),
    }),
    'utf8',
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length, 0);
  return Buffer.concat([MAGIC, length, header, payload]);
}

/**
 * The tensors of a reference file when it is exactly the reference `key` with the `expected`
 * names and shapes (in order), its payload's sha256 matches and every value is finite; otherwise
 * the reason it was refused.
 */
export function decodeReferenceFile(
  bytes: Buffer,
  key: string,
  expected: readonly { name: string; shape: readonly number[] }[],
): { tensors: TensorValues[] } | { refused: string } {
  if (bytes.length > maxReferenceFileBytes(expected)) return { refused: `file is larger (${bytes.length} bytes) than a reference of this shape can be` };
  if (bytes.length < PREFIX_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { refused: 'not a lopt reference file (magic)' };
  const h = bytes.readUInt32LE(MAGIC.length);
  if (h > MAX_HEADER_BYTES || PREFIX_BYTES + h > bytes.length) return { refused: `header length ${h} does not fit the file` };
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + h).toString('utf8'));
  } catch {
    return { refused: 'header is not JSON' };
  }
  const hd = header as { format?: unknown; key?: unknown; tensors?: unknown; payloadBytes?: unknown; payloadSha256?: unknown } | null;
  if (hd === null || typeof hd !== 'object') return { refused: 'header is not an object' };
  if (hd.format !== REFERENCE_FILE_FORMAT) return { refused: `format ${String(hd.format)}, expected ${REFERENCE_FILE_FORMAT}` };
  if (hd.key !== key) return { refused: 'file holds another reference (key differs)' };
  // The names and shapes must be exactly the expected ones (the header is a claim, not a source).
  const want = JSON.stringify(expected.map((t) => ({ name: t.name, shape: [...t.shape] })));
  if (JSON.stringify(hd.tensors) !== want) return { refused: 'tensor names or shapes differ from the model' };
  const payload = bytes.subarray(PREFIX_BYTES + h);
  const total = expected.reduce((n, t) => n + sizeOf(t.shape), 0);
  if (payload.length !== 4 * total || hd.payloadBytes !== payload.length) return { refused: `payload is ${payload.length} bytes, expected ${4 * total}` };
  if (hd.payloadSha256 !== sha256(payload)) return { refused: 'payload sha256 does not match' };
  // Copy out: the payload's offset in the file need not be 4-byte aligned.
  const all = new Float32Array(total);
  new Uint8Array(all.buffer).set(payload);
  if (!all.every(Number.isFinite)) return { refused: 'payload holds non-finite values' };
  let at = 0;
  const tensors = expected.map((t) => {
    const n = sizeOf(t.shape);
    const values = all.subarray(at, at + n);
    at += n;
    return { name: t.name, shape: t.shape, values };
  });
  return { tensors };
}
