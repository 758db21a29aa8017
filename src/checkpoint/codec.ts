/**
 * msgpackr's "no-eval" build: the same Packr, with the one place msgpackr generates code (its
 * compiled reader for record extensions, which any file may contain) replaced by the interpreted
 * reader. It is also pure JS: the native string extractor that the main entry loads is not used
 * on untrusted bytes, and it bundles for browsers. The subpath ships as CommonJS (Node reads its
 * named exports) without typings: src/types/msgpackr-no-eval.d.ts gives it the main entry's.
 */
import { Packr } from 'msgpackr/index-no-eval';
// Typed by the main entry, so emitted declarations never name the untyped subpath.
import type { Packr as MsgpackrPackr } from 'msgpackr';

/**
 * The one configuration used to write and read checkpoints (DESIGN.md).
 * - moreTypes: typed arrays are written as msgpackr's typed-array extension (raw bytes plus a
 *   type code), so a Float32Array comes back as a Float32Array, bit for bit. The bytes are in
 *   the writer's byte order: little-endian on every platform tfjs runs on.
 * - useRecords: false: plain msgpack maps, readable by any msgpack decoder.
 * Nothing else is enabled on purpose: no structures/getStructures (shared record definitions),
 * no structuredClone, no sequential/bundleStrings, no custom extensions. Decoding builds only
 * data (maps, arrays, strings, numbers, typed arrays, and a few built-ins such as Date, Set or
 * RegExp that the validator then rejects), and msgpackr renames a "__proto__" key, so a file
 * can neither run code nor reach Object.prototype.
 */
export const packr: MsgpackrPackr = new Packr({ moreTypes: true, useRecords: false });

/**
 * Whether the bytes open with a map: msgpack's fixmap, map16 or map32, or a msgpackr record
 * definition (a map written by a records-enabled packer). A checkpoint always starts with one;
 * checking first gives JSON or unrelated files a clear message instead of a decoder error.
 */
export function startsWithMap(bytes: Uint8Array): boolean {
  const b = bytes[0];
  if (b === undefined) return false;
  if ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf) return true;
  return (b === 0xd4 || b === 0xd5) && bytes[1] === 0x72;
}
