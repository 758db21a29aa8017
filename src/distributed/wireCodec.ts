// Plain data with typed arrays ↔ JSON, for jobs and results on the queue (BullMQ stores both as
// JSON). Float arrays travel as the base64 of their bytes, so every value — NaN payloads, −0,
// subnormals — arrives bit for bit, which byte-identical distributed runs need. Numbers JSON
// cannot hold (NaN, ±Infinity, −0) are tagged the same way. Decoding is strict: it is fed data
// from the network.
import { printable } from '../text/printable.js';

type Wire = null | boolean | number | string | Wire[] | { [key: string]: Wire };

const ARRAY_TAGS = { $f32: Float32Array, $f64: Float64Array, $i32: Int32Array } as const;
type ArrayTag = keyof typeof ARRAY_TAGS;

/** Upper bound on the bytes one decoded message may hold (a unit of mulo-mnist-v2 is ≈ 1 MB). */
export const MAX_WIRE_BYTES = 512 * 1024 * 1024;

export function encodeWire(value: unknown, path = '$'): Wire {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return { $num: 'NaN' };
    if (value === Infinity) return { $num: 'Infinity' };
    if (value === -Infinity) return { $num: '-Infinity' };
    if (Object.is(value, -0)) return { $num: '-0' };
    return value;
  }
  if (value instanceof Float32Array) return { $f32: base64(value) };
  if (value instanceof Float64Array) return { $f64: base64(value) };
  if (value instanceof Int32Array) return { $i32: base64(value) };
  if (Array.isArray(value)) return value.map((v, i) => encodeWire(v, `${path}[${i}]`));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: { [key: string]: Wire } = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      if (k.startsWith('$')) throw new Error(`wire: key '${k}' at ${path} starts with '$', which tags encoded values`);
      out[k] = encodeWire(v, `${path}.${k}`);
    }
    return out;
  }
  throw new Error(`wire: ${path} is a ${describe(value)}, which is not plain data`);
}

/** The inverse of encodeWire; throws naming the path of anything it would not have written. */
export function decodeWire(wire: unknown): unknown {
  const budget = { bytes: 0 };
  return decode(wire, '$', budget, 0);
}

function decode(w: unknown, path: string, budget: { bytes: number }, depth: number): unknown {
  if (depth > 32) throw new Error(`wire: ${path} is nested too deep`);
  if (w === null || typeof w === 'boolean' || typeof w === 'string') return w;
  if (typeof w === 'number') {
    if (!Number.isFinite(w)) throw new Error(`wire: ${path} is not a finite number`);
    return w;
  }
  if (Array.isArray(w)) return w.map((v, i) => decode(v, `${path}[${i}]`, budget, depth + 1));
  if (typeof w !== 'object') throw new Error(`wire: ${path} is a ${typeof w}`);
  const obj = w as Record<string, unknown>;
  const keys = Object.keys(obj);
  const tag = keys.find((k) => k.startsWith('$'));
  if (tag !== undefined) {
    if (keys.length !== 1) throw new Error(`wire: ${path} mixes the tag '${printable(tag, 12)}' with other keys`);
    const v = obj[tag];
    if (typeof v !== 'string') throw new Error(`wire: ${path}.${printable(tag, 12)} is not a string`);
    if (tag === '$num') {
      const n = ({ NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 } as Record<string, number>)[v];
      if (n === undefined) throw new Error(`wire: ${path} tags an unknown number`);
      return n;
    }
    if (!Object.prototype.hasOwnProperty.call(ARRAY_TAGS, tag)) throw new Error(`wire: ${path} has an unknown tag`);
    const Kind = ARRAY_TAGS[tag as ArrayTag];
    // Node's decoder skips what is not base64; re-encoding tells (4× faster than a regex on MBs).
    const bytes = Buffer.from(v, 'base64');
    if (bytes.toString('base64') !== v) throw new Error(`wire: ${path} is not base64`);
    if (bytes.length % Kind.BYTES_PER_ELEMENT !== 0) throw new Error(`wire: ${path} holds ${bytes.length} bytes, not a whole number of elements`);
    budget.bytes += bytes.length;
    if (budget.bytes > MAX_WIRE_BYTES) throw new Error(`wire: the message holds more than ${MAX_WIRE_BYTES} bytes of arrays`);
    const out = new Kind(bytes.length / Kind.BYTES_PER_ELEMENT);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (k === '__proto__') throw new Error(`wire: ${path} has a '__proto__' key`);
    out[k] = decode(obj[k], `${path}.${printable(k, 40)}`, budget, depth + 1);
  }
  return out;
}

function base64(a: Float32Array | Float64Array | Int32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function describe(v: unknown): string {
  if (typeof v !== 'object' || v === null) return typeof v;
  return (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'object';
}
