export { printable } from '../text/printable.js';

/**
 * Every checkpoint problem, on read or write. The message leads with the file and the field so a
 * user can find the problem without a stack trace: `x.lopt: theta 'mlp/w0': shape [39,32] needs
 * 1248 values, found 1000`.
 */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  /** The checkpoint path as given by the caller. */
  readonly file: string;
  /** Field path inside the checkpoint (e.g. "theta 'mlp/w0'", 'provenance.createdAt'); undefined for whole-file problems. */
  readonly field: string | undefined;

  constructor(file: string, field: string | undefined, detail: string, options?: { cause?: unknown }) {
    super(field === undefined ? `${file}: ${detail}` : `${file}: ${field}: ${detail}`, options);
    this.file = file;
    this.field = field;
  }
}
