// Reader for the IDX format of the original MNIST / Fashion-MNIST files (yann.lecun.com/exdb/mnist):
// magic [0, 0, type, ndims], then ndims big-endian uint32 sizes, then the data. Only unsigned bytes
// (type 0x08) are used by these datasets. A file is a gzip stream when it starts with 1f 8b.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const UBYTE = 0x08;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads and validates one IDX file; every failure names the file and what was wrong. */
export function readIdx(path: string, expectedDims: readonly (number | null)[]): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`lopt data: cannot read IDX file ${path}: ${(e as Error).message}`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`lopt data: IDX file ${path} is a corrupt or truncated gzip stream (${(e as Error).message})`);
    }
  }
  return parseIdx(bytes, path, expectedDims);
}

/** `expectedDims[i] === null` accepts any size for dimension i (the example count). */
export function parseIdx(bytes: Uint8Array, path: string, expectedDims: readonly (number | null)[]): IdxArray {
  const ndims = expectedDims.length;
  const headerLen = 4 + 4 * ndims;
  const fail = (what: string): never => {
    throw new Error(`lopt data: malformed IDX file ${path}: ${what}`);
  };
  if (bytes.length < headerLen) fail(`${bytes.length} bytes, shorter than its ${headerLen}-byte header`);
  const magic = `${hex(bytes[0]!)} ${hex(bytes[1]!)} ${hex(bytes[2]!)} ${hex(bytes[3]!)}`;
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE || bytes[3] !== ndims) {
    fail(`magic ${magic}, expected 00 00 08 ${hex(ndims)} (unsigned bytes, ${ndims} dimension${ndims > 1 ? 's' : ''})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  for (let i = 0; i < ndims; i++) {
    const want = expectedDims[i];
    if ((want !== null && dims[i] !== want) || dims[i] === 0) {
      fail(`dimensions [${dims.join(', ')}], expected [${expectedDims.map((d) => d ?? 'N>0').join(', ')}]`);
    }
  }
  const size = dims.reduce((p, d) => p * d, 1);
  const have = bytes.length - headerLen;
  if (have < size) fail(`data is short: ${have} bytes after the header, dimensions [${dims.join(', ')}] need ${size}`);
  if (have > size) fail(`${have - size} unexpected bytes after the ${size} bytes of data`);
  return { dims, data: bytes.subarray(headerLen) };
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
