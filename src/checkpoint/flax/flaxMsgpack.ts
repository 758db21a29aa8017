/**
 * A strict reader for Flax's msgpack files (`flax.serialization.to_bytes`), the format of the
 * learned optimizers released with learned_optimization (VeLO's `params`).
 *
 * What Flax writes (flax/serialization.py):
 * - the state dict of the saved object: dicts keep their string keys in insertion order, tuples
 *   and lists become maps {"0": …, "1": …}, dataclasses {field: …}, namedtuples {field: …} (Flax
 *   since July 2021) or, in older files, {name, fields: {"0": field…}, values: {"0": value…}};
 * - `msgpack.packb(state, default=…, strict_types=True)`: maps, strings, ints, floats, booleans,
 *   nil; an ndarray as extension 1 and a numpy scalar as extension 3, whose payload is itself
 *   msgpack: the array (shape, dtype name, C-order bytes), with no byte-order mark (numpy's
 *   native order: little-endian on every machine these files come from);
 * - arrays over 2**30 bytes as {"__msgpack_chunked_array__": true, shape: {"0": d0…},
 *   chunks: {"0": flat array…}}.
 *
 * The file is untrusted input, so this is a small reader for exactly those types rather than a
 * general decoder (msgpackr's extensions are registered process-wide, so teaching it Flax's
 * extension numbers would change how lopt reads its own `.lopt` files). Every declared length is
 * checked against the bytes that remain before anything is allocated; values, nesting, string
 * sizes, array dimensions and element counts are bounded; duplicate keys, trailing bytes, and
 * any type Flax never writes are refused. What is allocated is thus bounded by the file size
 * (itself bounded, 256 MiB by default) times a small constant. Errors are CheckpointErrors whose
 * message names the file label, the path inside the tree and the byte offset, what was wrong and
 * what is allowed; text from the file only appears through `printable`.
 */
import { open, stat } from 'node:fs/promises';
import { CheckpointError, printable } from '../error.js';
import { DEFAULT_MAX_BYTES } from '../format.js';

/** The numpy dtypes read. int64 values come back as numbers (each must be a safe integer). */
export type FlaxDtype = 'float32' | 'float64' | 'int32' | 'int64';

/** An ndarray (extension 1), a numpy scalar (extension 3, shape []), or a reassembled chunked array. */
export interface FlaxArray {
  readonly kind: 'array';
  readonly shape: number[];
  readonly dtype: FlaxDtype;
  /** C-order values: Float32Array (float32), Float64Array (float64, and int64 as exact numbers), Int32Array (int32). */
  readonly data: Float32Array | Float64Array | Int32Array;
}

/** A Flax state-dict map. Keys keep their order in the file, except that JS lists integer-like keys ("0", "1") first, ascending. */
export interface FlaxMap {
  [key: string]: FlaxTree;
}

export type FlaxTree = FlaxArray | string | number | boolean | null | FlaxMap;

export interface FlaxLimits {
  /** Largest file, in bytes (default 256 MiB, lopt's checkpoint limit). */
  maxBytes: number;
  /** Most msgpack values (keys, scalars, maps, arrays, shape entries) in the file. */
  maxValues: number;
  /** Deepest nesting of maps (the top-level map is depth 1). */
  maxDepth: number;
  /** Most dimensions of an array (numpy's own limit is 64). */
  maxDims: number;
  /** Most elements of one array, and the largest single dimension. */
  maxElements: number;
  /** Longest string or map key, in UTF-8 bytes. */
  maxStringBytes: number;
  /** Most elements of an int64 array (converted one by one to numbers). */
  maxInt64Elements: number;
}

/**
 * Defaults sized for learned-optimizer parameter files: VeLO's is 9.3 MB holding ~130 msgpack
 * values at depth 4; the largest arrays have a few million elements.
 */
export const FLAX_LIMITS: Readonly<FlaxLimits> = Object.freeze({
  maxBytes: DEFAULT_MAX_BYTES,
  maxValues: 1_000_000,
  maxDepth: 64,
  maxDims: 32,
  maxElements: 2 ** 28,
  maxStringBytes: 64 * 1024,
  maxInt64Elements: 65_536,
});

/** Whether a tree node is an array leaf (a map read from a file never holds a typed array). */
export function isFlaxArray(value: FlaxTree | undefined): value is FlaxArray {
  return typeof value === 'object' && value !== null && value.kind === 'array' && ArrayBuffer.isView((value as { data?: unknown }).data);
}

/** Whether a tree node is a map. */
export function isFlaxMap(value: FlaxTree | undefined): value is FlaxMap {
  return typeof value === 'object' && value !== null && !isFlaxArray(value);
}

/** Every array leaf with its path of keys, in file order (depth first). */
export function flaxArrayLeaves(tree: FlaxTree): { path: string[]; array: FlaxArray }[] {
  const out: { path: string[]; array: FlaxArray }[] = [];
  const walk = (node: FlaxTree, path: string[]): void => {
    if (isFlaxArray(node)) out.push({ path, array: node });
    else if (isFlaxMap(node)) for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
  };
  walk(tree, []);
  return out;
}

/**
 * Decodes the bytes of a Flax msgpack file into a plain tree: chunked arrays reassembled, the
 * legacy namedtuple form {name, fields, values} turned into {field: value}. The top level must
 * be a map (what `to_bytes` writes for a dataclass, tuple or dict). `label` names the file in
 * errors.
 */
export function decodeFlaxMsgpack(bytes: Uint8Array, label: string, limits: Partial<FlaxLimits> = {}): FlaxTree {
  const bounds: FlaxLimits = { ...FLAX_LIMITS, ...limits };
  if (bytes.length === 0) throw new CheckpointError(label, undefined, 'the file is empty (0 bytes); a Flax msgpack file holds at least one map');
  if (bytes.length > bounds.maxBytes) {
    throw new CheckpointError(
      label,
      undefined,
      `the file is ${bytes.length} bytes, over the ${bounds.maxBytes}-byte limit (raise maxBytes if it is a trusted file)`,
    );
  }
  const first = bytes[0] as number;
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) {
    throw new CheckpointError(
      label,
      undefined,
      `not a Flax msgpack file: flax.serialization.to_bytes writes a msgpack map, but the file starts with ${describeStart(bytes)}`,
    );
  }
  const reader = new Reader(bytes, label, bounds);
  const tree = reader.value([], 1);
  if (reader.pos !== bytes.length) {
    const extra = bytes.length - reader.pos;
    const hint = first === 0x80 && bytes.length > 1 && bytes[1]! >= 2 && bytes[1]! <= 5 ? ' (the file looks like a Python pickle, not msgpack)' : '';
    throw new CheckpointError(
      label,
      `byte ${reader.pos}`,
      `${extra} bytes follow the end of the top-level map; a Flax msgpack file holds exactly one value${hint}`,
    );
  }
  return tree;
}

/** Reads a Flax msgpack file, refusing it by size (fs.stat) before reading any byte. */
export async function loadFlaxMsgpackFile(path: string, limits: Partial<FlaxLimits> = {}): Promise<FlaxTree> {
  const maxBytes = limits.maxBytes ?? FLAX_LIMITS.maxBytes;
  const refuse = (size: number): never => {
    throw new CheckpointError(
      path,
      undefined,
      `the file is ${size} bytes, over the ${maxBytes}-byte limit; refusing to read it (raise maxBytes if it is a trusted file)`,
    );
  };
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new CheckpointError(path, undefined, 'not a regular file');
    if (info.size > maxBytes) refuse(info.size);
    const handle = await open(path, 'r');
    try {
      const size = (await handle.stat()).size; // again: the path may have been replaced since
      if (size > maxBytes) refuse(size);
      bytes = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const { bytesRead } = await handle.read(bytes, filled, size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      bytes = bytes.subarray(0, filled);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(path, undefined, `cannot read the file (${printable(error instanceof Error ? error.message : String(error), 200)})`, {
      cause: error,
    });
  }
  return decodeFlaxMsgpack(bytes, path, limits);
}

/** learned_optimization's `ParameterCheckpoint(params, gen_id, step)`, or the older plain tuple `(params, '', 0)`. */
export interface FlaxParameterCheckpoint {
  layout: 'checkpoint' | 'tuple';
  params: FlaxTree;
  genId: string;
  step: number;
}

/**
 * The parameters of a learned_optimization `params` file: a ParameterCheckpoint dataclass
 * ({params, gen_id, step}, written by outer_train.py) or the tuple `(theta, '', 0)` of the
 * oldest released files. `step` may be an int, a 0-d integer array or a numpy integer scalar.
 */
export function readParameterCheckpoint(tree: FlaxTree, label: string): FlaxParameterCheckpoint {
  if (!isFlaxMap(tree)) throw new CheckpointError(label, undefined, `expected a map at the top level, found ${describe(tree)}`);
  const keys = Object.keys(tree);
  const has = (names: string[]): boolean => keys.length === names.length && names.every((k) => Object.hasOwn(tree, k));
  let layout: 'checkpoint' | 'tuple';
  let params: FlaxTree;
  let genId: FlaxTree;
  let step: FlaxTree;
  let stepName: string;
  if (has(['params', 'gen_id', 'step'])) {
    layout = 'checkpoint';
    [params, genId, step, stepName] = [tree.params!, tree.gen_id!, tree.step!, 'step'];
  } else if (has(['0', '1', '2'])) {
    layout = 'tuple';
    [params, genId, step, stepName] = [tree['0']!, tree['1']!, tree['2']!, '2'];
  } else {
    throw new CheckpointError(
      label,
      undefined,
      `not a learned_optimization parameter file: expected the keys params, gen_id, step (ParameterCheckpoint) or 0, 1, 2 (a (theta, gen_id, step) tuple); found ${showKeys(keys)}`,
    );
  }
  if (!isFlaxMap(params))
    throw new CheckpointError(label, `'${layout === 'checkpoint' ? 'params' : '0'}'`, `the parameters must be a map, found ${describe(params)}`);
  if (typeof genId !== 'string')
    throw new CheckpointError(label, `'${layout === 'checkpoint' ? 'gen_id' : '1'}'`, `expected a string, found ${describe(genId)}`);
  let stepValue: number | undefined;
  if (typeof step === 'number' && Number.isSafeInteger(step)) stepValue = step;
  else if (isFlaxArray(step) && step.shape.length === 0 && (step.dtype === 'int32' || step.dtype === 'int64')) stepValue = step.data[0];
  if (stepValue === undefined)
    throw new CheckpointError(label, `'${stepName}'`, `expected an integer step (an int, a 0-d int array or a numpy int scalar), found ${describe(step)}`);
  return { layout, params, genId, step: stepValue };
}

// ---------------------------------------------------------------------------------------------

const CHUNKED = '__msgpack_chunked_array__';
/** Payload bytes of msgpack's float and int types, by type byte. */
const NUMBER_WIDTH: Record<number, number> = { 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8 };
const ITEM_SIZE: Record<FlaxDtype, number> = { float32: 4, float64: 8, int32: 4, int64: 8 };
const BIG_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Reader {
  pos = 0;
  private end: number;
  private values = 0;
  /** Inside an extension's payload: `end` is the payload's end, not the file's. */
  private inPayload = false;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly label: string,
    private readonly bounds: FlaxLimits,
  ) {
    this.end = bytes.length;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** One value at `path`; `depth` is the depth a map read here would have. */
  value(path: string[], depth: number): FlaxTree {
    const at = this.pos;
    const token = this.token(path);
    if (token <= 0x7f) return token;
    if (token >= 0xe0) return token - 0x100;
    if (token <= 0x8f) return this.map(token & 0x0f, path, depth, at);
    if (token <= 0x9f) return this.refuseArray(path, at);
    if (token <= 0xbf) return this.string(token & 0x1f, path, at, 'a string');
    switch (token) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return this.fail(
          path,
          at,
          'a msgpack byte string outside an ndarray payload; Flax state dicts hold only maps, strings, numbers, booleans, nil and arrays (extensions 1 and 3)',
        );
      case 0xc7:
        return this.ext(this.uint(1, path, at), path, at);
      case 0xc8:
        return this.ext(this.uint(2, path, at), path, at);
      case 0xc9:
        return this.ext(this.uint(4, path, at), path, at);
      case 0xd4:
        return this.ext(1, path, at);
      case 0xd5:
        return this.ext(2, path, at);
      case 0xd6:
        return this.ext(4, path, at);
      case 0xd7:
        return this.ext(8, path, at);
      case 0xd8:
        return this.ext(16, path, at);
      case 0xd9:
        return this.string(this.uint(1, path, at), path, at, 'a string');
      case 0xda:
        return this.string(this.uint(2, path, at), path, at, 'a string');
      case 0xdb:
        return this.string(this.uint(4, path, at), path, at, 'a string');
      case 0xdc:
      case 0xdd:
        return this.refuseArray(path, at);
      case 0xde:
        return this.map(this.uint(2, path, at), path, depth, at);
      case 0xdf:
        return this.map(this.uint(4, path, at), path, depth, at);
      default:
        return this.number(token, path, at);
    }
  }

  private token(path: string[]): number {
    if (this.pos >= this.end) this.fail(path, this.pos, `the data ends where a value should start${this.truncationHint()}`);
    if (++this.values > this.bounds.maxValues) this.fail(path, this.pos, `more than ${this.bounds.maxValues} msgpack values (the maxValues limit)`);
    return this.bytes[this.pos++] as number;
  }

  /** Numbers: 0xca–0xd3 (float32/64, uint8–64, int8–64); anything else left is not msgpack. */
  private number(token: number, path: string[], at: number): number {
    const n = NUMBER_WIDTH[token];
    if (n === undefined) return this.fail(path, at, `byte 0x${hex(token)} is not a msgpack type`);
    this.need(n, 'a number', path, at);
    const p = this.pos;
    this.pos += n;
    const v = this.view;
    switch (token) {
      case 0xca:
        return v.getFloat32(p);
      case 0xcb:
        return v.getFloat64(p);
      case 0xcc:
        return v.getUint8(p);
      case 0xcd:
        return v.getUint16(p);
      case 0xce:
        return v.getUint32(p);
      case 0xd0:
        return v.getInt8(p);
      case 0xd1:
        return v.getInt16(p);
      case 0xd2:
        return v.getInt32(p);
      default: {
        const big = token === 0xcf ? v.getBigUint64(p) : v.getBigInt64(p);
        if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
          return this.fail(path, at, 'an integer beyond ±2^53 - 1; only integers a JS number holds exactly are read');
        }
        return Number(big);
      }
    }
  }

  private uint(width: 1 | 2 | 4, path: string[], at: number): number {
    this.need(width, 'a length', path, at);
    const p = this.pos;
    this.pos += width;
    return width === 1 ? this.view.getUint8(p) : width === 2 ? this.view.getUint16(p) : this.view.getUint32(p);
  }

  private need(n: number, what: string, path: string[], at: number): void {
    const left = this.end - this.pos;
    if (n > left) {
      const where = this.inPayload ? 'the ndarray payload' : 'the data';
      this.fail(path, at, `${what} declares ${n} bytes, but ${where} ends ${left} bytes later${this.truncationHint()}`);
    }
  }

  private truncationHint(): string {
    return this.inPayload ? '' : ' (a truncated file?)';
  }

  private string(length: number, path: string[], at: number, what: string): string {
    if (length > this.bounds.maxStringBytes)
      this.fail(path, at, `${what} of ${length} bytes; at most ${this.bounds.maxStringBytes} are allowed (the maxStringBytes limit)`);
    this.need(length, what, path, at);
    const start = this.pos;
    this.pos += length;
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      return this.fail(path, at, `${what} that is not valid UTF-8`);
    }
  }

  private refuseArray(path: string[], at: number): never {
    return this.fail(path, at, 'a msgpack array outside an ndarray payload; Flax state dicts write lists and tuples as maps {"0": …, "1": …}');
  }

  private map(count: number, path: string[], depth: number, at: number): FlaxMap | FlaxArray {
    if (depth > this.bounds.maxDepth) this.fail(path, at, `maps nested deeper than ${this.bounds.maxDepth} levels (the maxDepth limit)`);
    if (count * 2 > this.end - this.pos) {
      this.fail(
        path,
        at,
        `a map of ${count} entries needs at least ${count * 2} bytes, but the data ends ${this.end - this.pos} bytes later${this.truncationHint()}`,
      );
    }
    const out: FlaxMap = {};
    for (let i = 0; i < count; i++) {
      const keyAt = this.pos;
      const token = this.token(path);
      let key: string;
      if (token >= 0xa0 && token <= 0xbf) key = this.string(token & 0x1f, path, keyAt, 'a map key');
      else if (token === 0xd9) key = this.string(this.uint(1, path, keyAt), path, keyAt, 'a map key');
      else if (token === 0xda) key = this.string(this.uint(2, path, keyAt), path, keyAt, 'a map key');
      else if (token === 0xdb) key = this.string(this.uint(4, path, keyAt), path, keyAt, 'a map key');
      else this.fail(path, keyAt, `a map key of msgpack type 0x${hex(token)}; Flax state dicts have string keys only`);
      if (Object.hasOwn(out, key)) this.fail(path, keyAt, `the key '${printable(key, 60)}' appears twice in one map`);
      define(out, key, this.value([...path, key], depth + 1));
    }
    if (Object.hasOwn(out, CHUNKED)) return this.unchunk(out, path, at);
    return legacyNamedTuple(out, (detail) => this.fail(path, at, detail));
  }

  private ext(length: number, path: string[], at: number): FlaxArray {
    this.need(1 + length, 'an extension', path, at);
    const type = this.view.getInt8(this.pos);
    this.pos += 1;
    if (type === 2) this.fail(path, at, 'a complex number (msgpack extension 2); parameter files hold ndarrays (extension 1) and numpy scalars (extension 3)');
    if (type !== 1 && type !== 3) this.fail(path, at, `msgpack extension type ${type}; Flax writes only 1 (ndarray), 2 (complex) and 3 (numpy scalar)`);
    const outerEnd = this.end;
    this.end = this.pos + length;
    this.inPayload = true;
    try {
      const array = this.ndarray(path, at);
      if (this.pos !== this.end) this.fail(path, this.pos, `${this.end - this.pos} bytes follow the (shape, dtype, bytes) triple inside the ndarray payload`);
      if (type === 3 && array.shape.length !== 0)
        this.fail(path, at, `a numpy scalar (extension 3) with shape [${array.shape.join(', ')}]; a scalar has shape []`);
      return array;
    } finally {
      this.end = outerEnd;
      this.inPayload = false;
    }
  }

  /** The payload: msgpack (shape, dtype name, bytes), as flax's _ndarray_to_bytes packs it. */
  private ndarray(path: string[], at: number): FlaxArray {
    const what = 'an ndarray payload, which must be the msgpack array (shape, dtype name, bytes)';
    const count = this.arrayHeader(path, what);
    if (count !== 3) this.fail(path, at, `${what}, holds ${count} values`);

    const shapeAt = this.pos;
    const dims = this.arrayHeader(path, 'an ndarray shape, which must be a msgpack array of integers');
    if (dims > this.bounds.maxDims) this.fail(path, shapeAt, `an ndarray with ${dims} dimensions; at most ${this.bounds.maxDims} are allowed`);
    const shape: number[] = [];
    let elements = 1;
    for (let i = 0; i < dims; i++) {
      const dimAt = this.pos;
      const token = this.token(path);
      const d = token <= 0x7f ? token : token >= 0xcc && token <= 0xd3 ? this.number(token, path, dimAt) : NaN;
      if (!Number.isSafeInteger(d) || d < 0) {
        const found = token >= 0xe0 ? String(token - 0x100) : Number.isFinite(d) ? String(d) : `msgpack type 0x${hex(token)}`;
        this.fail(path, dimAt, `an ndarray dimension must be a non-negative integer, found ${found}`);
      }
      if (d > this.bounds.maxElements)
        this.fail(path, dimAt, `an ndarray dimension of ${d}; at most ${this.bounds.maxElements} are allowed (the maxElements limit)`);
      shape.push(d);
      elements *= d;
      if (elements > this.bounds.maxElements) {
        this.fail(
          path,
          shapeAt,
          `an ndarray of shape [${shape.join(', ')}${i + 1 < dims ? ', …' : ''}] has over ${this.bounds.maxElements} elements (the maxElements limit)`,
        );
      }
    }

    const dtypeAt = this.pos;
    const dtypeToken = this.token(path);
    let nameLength: number;
    if (dtypeToken >= 0xa0 && dtypeToken <= 0xbf) nameLength = dtypeToken & 0x1f;
    else if (dtypeToken === 0xd9 || dtypeToken === 0xc4) nameLength = this.uint(1, path, dtypeAt);
    else return this.fail(path, dtypeAt, `an ndarray dtype name must be a string, found msgpack type 0x${hex(dtypeToken)}`);
    const name = this.string(nameLength, path, dtypeAt, 'an ndarray dtype name');
    if (!isDtype(name)) {
      this.fail(
        path,
        dtypeAt,
        `dtype '${printable(name, 40)}' is not supported; supported: float32, float64, int32, int64 (at most ${this.bounds.maxInt64Elements} elements)`,
      );
    }
    if (name === 'int64' && elements > this.bounds.maxInt64Elements) {
      this.fail(path, dtypeAt, `an int64 array of ${elements} elements; int64 arrays are read as numbers, at most ${this.bounds.maxInt64Elements} elements`);
    }

    const dataAt = this.pos;
    const dataToken = this.token(path);
    const width = dataToken === 0xc4 ? 1 : dataToken === 0xc5 ? 2 : dataToken === 0xc6 ? 4 : 0;
    if (width === 0) return this.fail(path, dataAt, `ndarray data must be a msgpack byte string, found msgpack type 0x${hex(dataToken)}`);
    const length = this.uint(width, path, dataAt);
    this.need(length, 'the ndarray data', path, dataAt);
    const itemSize = ITEM_SIZE[name];
    if (length !== elements * itemSize) {
      this.fail(
        path,
        dataAt,
        `shape [${shape.join(', ')}] of ${name} needs ${elements} × ${itemSize} = ${elements * itemSize} bytes, but the data holds ${length}`,
      );
    }
    const raw = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return { kind: 'array', shape, dtype: name, data: typedArray(name, raw, elements, (detail) => this.fail(path, dataAt, detail)) };
  }

  /** A msgpack array header inside an ndarray payload: its count, checked against the bytes left. */
  private arrayHeader(path: string[], what: string): number {
    const at = this.pos;
    const token = this.token(path);
    let count: number;
    if (token >= 0x90 && token <= 0x9f) count = token & 0x0f;
    else if (token === 0xdc) count = this.uint(2, path, at);
    else if (token === 0xdd) count = this.uint(4, path, at);
    else return this.fail(path, at, `${what}, but it starts with msgpack type 0x${hex(token)}`);
    if (count > this.end - this.pos) this.fail(path, at, `${what}, declares ${count} values, more than the ${this.end - this.pos} bytes left in the payload`);
    return count;
  }

  /** flax's _unchunk: {__msgpack_chunked_array__: true, shape: {"0": d0…}, chunks: {"0": flat…}}. */
  private unchunk(map: FlaxMap, path: string[], at: number): FlaxArray {
    const fail = (detail: string): never => this.fail(path, at, `a chunked array ('${CHUNKED}'): ${detail}`);
    const keys = Object.keys(map);
    if (keys.length !== 3 || !Object.hasOwn(map, 'shape') || !Object.hasOwn(map, 'chunks')) {
      fail(`expected exactly the keys ${CHUNKED}, shape, chunks; found ${showKeys(keys)}`);
    }
    if (map[CHUNKED] !== true) fail(`the ${CHUNKED} flag must be true, found ${describe(map[CHUNKED]!)}`);
    const shapeMap = map.shape!;
    const chunkMap = map.chunks!;
    if (!isFlaxMap(shapeMap)) return fail(`shape must be a map {"0": d0, …}, found ${describe(shapeMap)}`);
    if (!isFlaxMap(chunkMap)) return fail(`chunks must be a map {"0": array, …}, found ${describe(chunkMap)}`);
    const dims = indexedValues(shapeMap, 'shape', fail);
    if (dims.length > this.bounds.maxDims) fail(`${dims.length} dimensions; at most ${this.bounds.maxDims} are allowed`);
    const shape: number[] = [];
    let elements = 1;
    for (const d of dims) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return fail(`a dimension must be a non-negative integer, found ${describe(d)}`);
      if (d > this.bounds.maxElements) fail(`a dimension of ${d}; at most ${this.bounds.maxElements} are allowed (the maxElements limit)`);
      shape.push(d);
      elements *= d;
      if (elements > this.bounds.maxElements) fail(`over ${this.bounds.maxElements} elements (the maxElements limit)`);
    }
    const chunks = indexedValues(chunkMap, 'chunks', fail);
    if (chunks.length === 0) fail('no chunks');
    let dtype: FlaxDtype | undefined;
    let total = 0;
    for (const [i, chunk] of chunks.entries()) {
      if (!isFlaxArray(chunk) || chunk.shape.length !== 1) return fail(`chunk ${i} must be a 1-D array, found ${describe(chunk)}`);
      if (dtype !== undefined && chunk.dtype !== dtype) fail(`chunk ${i} is ${chunk.dtype}, chunk 0 is ${dtype}; all chunks share one dtype`);
      dtype = chunk.dtype;
      total += chunk.data.length;
    }
    if (total !== elements) fail(`shape [${shape.join(', ')}] needs ${elements} elements, the chunks hold ${total}`);
    const first = chunks[0] as FlaxArray;
    const data = new (first.data.constructor as new (n: number) => Float32Array | Float64Array | Int32Array)(total);
    let offset = 0;
    for (const chunk of chunks as FlaxArray[]) {
      data.set(chunk.data, offset);
      offset += chunk.data.length;
    }
    return { kind: 'array', shape, dtype: first.dtype, data };
  }

  private fail(path: string[], at: number, detail: string): never {
    throw new CheckpointError(this.label, `${path.length === 0 ? 'at the top level' : `at '${showPath(path)}'`} (byte ${at})`, detail);
  }
}

function isDtype(name: string): name is FlaxDtype {
  return Object.hasOwn(ITEM_SIZE, name);
}

/** The values as a fresh, aligned typed array (the file's bytes are little-endian). */
function typedArray(dtype: FlaxDtype, raw: Uint8Array, elements: number, fail: (detail: string) => never): Float32Array | Float64Array | Int32Array {
  if (dtype === 'int64') {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float64Array(elements);
    for (let i = 0; i < elements; i++) {
      const big = view.getBigInt64(8 * i, true);
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
        fail(`int64 element ${i} is beyond ±2^53 - 1; only integers a JS number holds exactly are read`);
      out[i] = Number(big);
    }
    return out;
  }
  const copy = raw.slice();
  if (BIG_ENDIAN_HOST) {
    const size = ITEM_SIZE[dtype];
    for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  }
  if (dtype === 'float32') return new Float32Array(copy.buffer, 0, elements);
  if (dtype === 'float64') return new Float64Array(copy.buffer, 0, elements);
  return new Int32Array(copy.buffer, 0, elements);
}

/** Sets a key without invoking a setter: a "__proto__" key from a file stays an ordinary key. */
function define(map: FlaxMap, key: string, value: FlaxTree): void {
  if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
  else map[key] = value;
}

/** The values of a map {"0": …, "1": …, …, "n-1": …} (what flax writes for a tuple), in index order. */
function indexedValues(map: FlaxMap, what: string, fail: (detail: string) => never): FlaxTree[] {
  const keys = Object.keys(map);
  const out: FlaxTree[] = [];
  for (let i = 0; i < keys.length; i++) {
    if (!Object.hasOwn(map, String(i))) fail(`${what} must have the keys "0" … "${keys.length - 1}", found ${showKeys(keys)}`);
    out.push(map[String(i)]!);
  }
  return out;
}

/**
 * Flax before July 2021 wrote a namedtuple as {name, fields: {"0": "hidden", …}, values: {"0": …}};
 * current Flax restores that form as {field: value}, and so does this. A map with exactly those
 * three keys in that shape is converted; any other map is left as it is.
 */
function legacyNamedTuple(map: FlaxMap, fail: (detail: string) => never): FlaxMap {
  const keys = Object.keys(map);
  if (keys.length !== 3 || !Object.hasOwn(map, 'name') || !Object.hasOwn(map, 'fields') || !Object.hasOwn(map, 'values')) return map;
  const { name, fields, values } = map as { name: FlaxTree; fields: FlaxTree; values: FlaxTree };
  if (typeof name !== 'string' || !isFlaxMap(fields) || !isFlaxMap(values)) return map;
  const n = Object.keys(fields).length;
  if (Object.keys(values).length !== n) return map;
  for (let i = 0; i < n; i++) {
    if (typeof fields[String(i)] !== 'string' || !Object.hasOwn(values, String(i))) return map;
  }
  const out: FlaxMap = {};
  for (let i = 0; i < n; i++) {
    const field = fields[String(i)] as string;
    if (Object.hasOwn(out, field)) fail(`the namedtuple '${printable(name, 40)}' (old Flax form) names the field '${printable(field, 40)}' twice`);
    define(out, field, values[String(i)]!);
  }
  return out;
}

function describe(value: FlaxTree): string {
  if (value === null) return 'nil';
  if (isFlaxArray(value)) return `a ${value.dtype} array of shape [${value.shape.join(', ')}]`;
  if (typeof value === 'object') return `a map with keys ${showKeys(Object.keys(value))}`;
  if (typeof value === 'string') return `the string '${printable(value, 40)}'`;
  return `${typeof value} ${String(value)}`;
}

function showKeys(keys: string[]): string {
  if (keys.length === 0) return 'none';
  const shown = keys.slice(0, 8).map((k) => `'${printable(k, 40)}'`);
  return keys.length > 8 ? `${shown.join(', ')} and ${keys.length - 8} more` : shown.join(', ');
}

function showPath(path: string[]): string {
  const parts = path.length > 12 ? [...path.slice(0, 4), `…${path.length - 8} more…`, ...path.slice(-4)] : path;
  return parts.map((p) => printable(p, 60)).join('/');
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}

function describeStart(bytes: Uint8Array): string {
  const b = bytes[0] as number;
  const at = `byte 0x${hex(b)}`;
  const ascii = (s: string): boolean => s.split('').every((c, i) => bytes[i] === c.charCodeAt(0));
  if (b === 0x7b || b === 0x5b) return `${at} ('${String.fromCharCode(b)}'): this looks like JSON text`;
  if (ascii('PK')) return `${at} ('P'): this looks like a zip archive (np.savez, a PyTorch file)`;
  if (ascii('\x93NUMPY')) return `${at}: this looks like a NumPy .npy file`;
  if ((b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd) return `${at} (a msgpack array)`;
  return at;
}
