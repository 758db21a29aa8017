// Plain data with typed arrays ↔ one binary value, for unit inputs and results stored in Redis
// beside their BullMQ jobs: a JSON header in which every array is replaced by its place in the
// body, then the arrays' bytes, each 8-byte aligned. No base64 and no megabyte JSON strings: a
// unit's 1–2 MB of state costs a memcpy, not a text round trip. Every float arrives bit for bit.
// Decoding is strict (the bytes come from the network): the header is checked field by field,
// and every array must lie inside the body, in order, without overlap.
import { printable } from '../text/printable.js';

const KINDS = { f32: Float32Array, f64: Float64Array, i32: Int32Array } as const;
type Kind = keyof typeof KINDS;
type ArrayOf = Float32Array | Float64Array | Int32Array;

const MAGIC = 0x4c4f5042; // "LOPB"
const PREFIX = 8; // magic + header length, both uint32 LE
const MAX_HEADER = 16 * 1024 * 1024;

export function encodeBlob(value: unknown): Buffer {
  const arrays: ArrayOf[] = [];
  let offset = 0;
  const header = JSON.stringify(
    walk(value, '$', (a) => {
      const kind = kindOf(a);
      const at = offset;
      arrays.push(a);
      offset = align(offset + a.byteLength);
      return { $a: kind, at, n: a.length };
    }),
  );
  const headerBytes = Buffer.from(header, 'utf8');
  const bodyStart = align(PREFIX + headerBytes.length);
  const out = Buffer.alloc(bodyStart + offset);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(headerBytes.length, 4);
  headerBytes.copy(out, PREFIX);
  let at = bodyStart;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at = align(at + a.byteLength);
  }
  return out;
}

export function decodeBlob(bytes: Buffer): unknown {
  if (bytes.length < PREFIX || bytes.readUInt32LE(0) !== MAGIC) throw new Error('blob: not a lopt blob');
  const headerLength = bytes.readUInt32LE(4);
  if (headerLength > MAX_HEADER || PREFIX + headerLength > bytes.length) throw new Error('blob: its header runs past its end');
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8', PREFIX, PREFIX + headerLength));
  } catch {
    throw new Error('blob: its header is not JSON');
  }
  const body = align(PREFIX + headerLength);
  let next = 0; // arrays must come in order, each after the previous one
  return rebuild(header, '$', 0, (d, path) => {
    const kind = d['$a'];
    const at = d['at'];
    const n = d['n'];
    if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(KINDS, kind)) throw new Error(`blob: ${path} has an unknown array kind`);
    const Kind = KINDS[kind as Kind];
    if (!Number.isSafeInteger(at) || !Number.isSafeInteger(n) || (n as number) < 0 || (at as number) !== next) {
      throw new Error(`blob: ${path} is not where the next array must be`);
    }
    const byteLength = (n as number) * Kind.BYTES_PER_ELEMENT;
    const start = body + (at as number);
    if (start + byteLength > bytes.length) throw new Error(`blob: ${path} runs past the end`);
    next = align((at as number) + byteLength);
    // A copy with its own buffer: aligned, and movable to a worker thread.
    const out = new Kind(n as number);
    new Uint8Array(out.buffer).set(bytes.subarray(start, start + byteLength));
    return out;
  });
}

const align = (n: number) => (n + 7) & ~7;

function kindOf(a: ArrayOf): Kind {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Float64Array) return 'f64';
  return 'i32';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function walk(v: unknown, path: string, array: (a: ArrayOf) => Json): Json {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || Object.is(v, -0)) return { $n: Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v > 0 ? 'Infinity' : '-Infinity' };
    return v;
  }
  if (v instanceof Float32Array || v instanceof Float64Array || v instanceof Int32Array) return array(v);
  if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`, array));
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: { [key: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      if (k.startsWith('$')) throw new Error(`blob: key '${printable(k, 40)}' at ${path} starts with '$', which tags encoded values`);
      out[k] = walk(x, `${path}.${k}`, array);
    }
    return out;
  }
  throw new Error(`blob: ${path} is not plain data`);
}

const NUMBERS: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 };

function rebuild(v: unknown, path: string, depth: number, array: (d: Record<string, unknown>, path: string) => ArrayOf): unknown {
  if (depth > 32) throw new Error(`blob: ${path} is nested too deep`);
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map((x, i) => rebuild(x, `${path}[${i}]`, depth + 1, array));
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if ('$a' in o) {
    if (keys.length !== 3 || !('at' in o) || !('n' in o)) throw new Error(`blob: ${path} is a malformed array entry`);
    return array(o, path);
  }
  if ('$n' in o) {
    const n = typeof o['$n'] === 'string' ? NUMBERS[o['$n']] : undefined;
    if (keys.length !== 1 || n === undefined) throw new Error(`blob: ${path} tags an unknown number`);
    return n;
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (k.startsWith('$') || k === '__proto__') throw new Error(`blob: ${path} has the key '${printable(k, 40)}'`);
    out[k] = rebuild(o[k], `${path}.${printable(k, 40)}`, depth + 1, array);
  }
  return out;
}
