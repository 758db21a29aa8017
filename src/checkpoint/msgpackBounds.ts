/**
 * A walk over msgpack bytes that builds nothing, run before msgpackr decodes a checkpoint, so
 * that what decoding allocates is bounded by the input and by fixed limits rather than by what
 * the bytes declare.
 *
 * Why: one byte (0x90, an empty array) decodes to a JS array of ~40 bytes, so a 30 MB file of
 * empty arrays cost 1.5 GB and 13 s before validation could refuse it. The walk counts every
 * value and the nesting depth, and checks each declared length against the bytes that remain
 * (an array of n values needs ≥ n bytes, a map of n entries ≥ 2n), in O(bytes) time and O(depth)
 * memory, so a hostile file fails in milliseconds with nothing allocated.
 *
 * What it accepts is the msgpack a checkpoint writer produces (codec.ts): the core types plus
 * msgpackr's typed-array extension (type 0x74). Every other extension — records (0x72), sets,
 * errors, regexps, structured-clone references, bundled strings, dates — is refused: lopt never
 * writes them, and several of them make msgpackr read nested values the walk would have to model.
 */

export interface MsgpackBounds {
  /** Most values (scalars, strings, byte strings, containers) in the whole document. */
  maxValues: number;
  /** Deepest nesting of arrays and maps (the top-level map is depth 1). */
  maxDepth: number;
}

/**
 * Defaults sized for checkpoints: a training checkpoint of the largest shipped recipe holds a few
 * thousand values at depth ≤ 8 (floats travel as typed arrays, one value each). 1,000,000 values
 * bound decoding to well under 100 MB whatever they are.
 */
export const CHECKPOINT_BOUNDS: MsgpackBounds = { maxValues: 1_000_000, maxDepth: 64 };

/** msgpackr's typed-array extension (moreTypes): the one extension a checkpoint holds. */
const TYPED_ARRAY_EXT = 0x74;

const EXTENSION_NAMES: Record<number, string> = {
  0x00: 'undefined',
  0x42: 'BigInt',
  0x62: 'bundled strings',
  0x65: 'Error',
  0x69: 'structured-clone id',
  0x70: 'structured-clone pointer',
  0x72: 'record definition',
  0x73: 'Set',
  0x78: 'RegExp',
  0xff: 'Date',
};

export class MsgpackBoundsError extends Error {
  override readonly name = 'MsgpackBoundsError';
  /** True when the bytes end before what they declare: what a truncated copy looks like. */
  readonly incomplete: boolean;

  constructor(message: string, incomplete: boolean) {
    super(message);
    this.incomplete = incomplete;
  }
}

/**
 * Throws a MsgpackBoundsError describing the first problem in the first msgpack value of
 * `bytes`: a declared length longer than the bytes left, too many values, too deep, a byte
 * msgpack never uses, or an extension a checkpoint does not hold. Returns the number of values.
 */
export function checkMsgpackBounds(bytes: Uint8Array, bounds: MsgpackBounds = CHECKPOINT_BOUNDS): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  // Items still to read in each open container (a map's count is 2 × entries).
  const open: number[] = [];
  let pos = 0;
  let values = 0;

  const fail = (at: number, what: string, incomplete = false): never => {
    throw new MsgpackBoundsError(`byte ${at}: ${what}`, incomplete);
  };
  const need = (at: number, n: number, what: string): void => {
    if (n > end - pos) fail(at, `${what} declares ${n} bytes, but only ${end - pos} remain`, true);
  };
  const uint = (at: number, width: 1 | 2 | 4): number => {
    need(at, width, 'a length');
    const n = width === 1 ? view.getUint8(pos) : width === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += width;
    return n;
  };
  const skip = (at: number, n: number, what: string): void => {
    need(at, n, what);
    pos += n;
  };
  const ext = (at: number, length: number): void => {
    need(at, 1, 'an extension');
    const type = bytes[pos] as number;
    if (type !== TYPED_ARRAY_EXT) {
      const name = EXTENSION_NAMES[type];
      fail(
        at,
        `msgpack extension type 0x${type.toString(16).padStart(2, '0')}${name === undefined ? '' : ` (msgpackr ${name})`}; a checkpoint holds only typed arrays (0x74)`,
      );
    }
    pos += 1;
    skip(at, length, 'an extension');
  };
  const container = (at: number, count: number, perItem: 1 | 2, what: string): void => {
    const items = count * perItem;
    if (items > end - pos) fail(at, `${what} of ${count} declares more values than the ${end - pos} bytes left can hold`, true);
    if (items === 0) return;
    if (open.length + 1 > bounds.maxDepth) fail(at, `nested deeper than ${bounds.maxDepth} levels`);
    open.push(items);
  };

  do {
    if (pos >= end) fail(pos, 'the data ends early', true);
    const at = pos;
    const token = bytes[pos++] as number;
    if (++values > bounds.maxValues) fail(at, `more than ${bounds.maxValues} values`);
    const depthBefore = open.length;
    if (token <= 0x7f || token >= 0xe0 || token === 0xc0 || token === 0xc2 || token === 0xc3) {
      // fixint, nil, booleans: no payload
    } else if (token <= 0x8f) container(at, token & 0x0f, 2, 'a map');
    else if (token <= 0x9f) container(at, token & 0x0f, 1, 'an array');
    else if (token <= 0xbf) skip(at, token & 0x1f, 'a string');
    else {
      switch (token) {
        case 0xc4:
          skip(at, uint(at, 1), 'a byte string');
          break;
        case 0xc5:
          skip(at, uint(at, 2), 'a byte string');
          break;
        case 0xc6:
          skip(at, uint(at, 4), 'a byte string');
          break;
        case 0xc7:
          ext(at, uint(at, 1));
          break;
        case 0xc8:
          ext(at, uint(at, 2));
          break;
        case 0xc9:
          ext(at, uint(at, 4));
          break;
        case 0xca:
          skip(at, 4, 'a float32');
          break;
        case 0xcb:
          skip(at, 8, 'a float64');
          break;
        case 0xcc:
        case 0xd0:
          skip(at, 1, 'an integer');
          break;
        case 0xcd:
        case 0xd1:
          skip(at, 2, 'an integer');
          break;
        case 0xce:
        case 0xd2:
          skip(at, 4, 'an integer');
          break;
        case 0xcf:
        case 0xd3:
          skip(at, 8, 'an integer');
          break;
        case 0xd4:
          ext(at, 1);
          break;
        case 0xd5:
          ext(at, 2);
          break;
        case 0xd6:
          ext(at, 4);
          break;
        case 0xd7:
          ext(at, 8);
          break;
        case 0xd8:
          ext(at, 16);
          break;
        case 0xd9:
          skip(at, uint(at, 1), 'a string');
          break;
        case 0xda:
          skip(at, uint(at, 2), 'a string');
          break;
        case 0xdb:
          skip(at, uint(at, 4), 'a string');
          break;
        case 0xdc:
          container(at, uint(at, 2), 1, 'an array');
          break;
        case 0xdd:
          container(at, uint(at, 4), 1, 'an array');
          break;
        case 0xde:
          container(at, uint(at, 2), 2, 'a map');
          break;
        case 0xdf:
          container(at, uint(at, 4), 2, 'a map');
          break;
        default:
          fail(at, `0x${token.toString(16)} is not a msgpack type`);
      }
    }
    // A value that opened no container is complete: close every container it completes.
    if (open.length === depthBefore) {
      while (open.length > 0) {
        const left = (open[open.length - 1] as number) - 1;
        if (left > 0) {
          open[open.length - 1] = left;
          break;
        }
        open.pop();
      }
    }
  } while (open.length > 0);
  return values;
}
