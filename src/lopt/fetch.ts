// Loading a learned optimizer where there are URLs and bytes but no files (a browser): fetch() with
// the same size limit as the file reader, then the same validation.
import { tooLarge, type LoadOptions } from '../checkpoint/decode.js';
import { CheckpointError } from '../checkpoint/error.js';
import { DEFAULT_MAX_BYTES } from '../checkpoint/format.js';
import { printable } from '../text/printable.js';
import { decodeLearnedOptimizer, type LoadedLearnedOptimizer } from './decode.js';

/** The response body, refused as soon as it is known to exceed `maxBytes` (Content-Length, else while streaming). */
async function cappedBody(response: Response, label: string, maxBytes: number): Promise<Uint8Array> {
  const refuse = (size: number | string): never => {
    throw tooLarge(label, size, maxBytes);
  };
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) refuse(declared);
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      refuse(`at least ${total}`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/**
 * A learned optimizer from a URL of a `.lopt` file (fetched; a relative URL resolves against the
 * page) or from its bytes (a dropped file's arrayBuffer()). Everything is validated as for a file.
 */
export async function loadLearnedOptimizerFrom(source: string | URL | ArrayBuffer | Uint8Array, options: LoadOptions = {}): Promise<LoadedLearnedOptimizer> {
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) return decodeLearnedOptimizer(source, 'checkpoint', options);
  const label = printable(String(source), 200);
  let response: Response;
  try {
    response = await fetch(source);
  } catch (e) {
    throw new CheckpointError(label, undefined, `cannot fetch the checkpoint (${printable((e as Error).message, 200)})`, { cause: e });
  }
  if (!response.ok) throw new CheckpointError(label, undefined, `cannot fetch the checkpoint (HTTP ${response.status})`);
  return decodeLearnedOptimizer(await cappedBody(response, label, options.maxBytes ?? DEFAULT_MAX_BYTES), label, options);
}
