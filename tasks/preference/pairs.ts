// Seeded preference pairs from the Moby Dick text: a prompt, the text's true continuation
// (chosen) and a worse one (rejected), encoded as two next-character sequences with a mask over
// the response targets. Pure data (typed arrays): the task turns them into tensors.
import { Rng } from '../../src/random/rng.js';
import type { TextDataset } from '../data/text.js';
import { checkCommon } from '../data/batches.js';
import type { Split } from '../types.js';

/** Prompt characters Lp = ⌊t/2⌋. */
export const promptLength = (seqLen: number): number => Math.floor(seqLen / 2);
/** The longest response, t + 1 − Lp: prompt and response then fill the t + 1 characters that give t targets. */
export const maxResponseLength = (seqLen: number): number => seqLen + 1 - promptLength(seqLen);

/** A rejected response is the chosen one's words reordered, or a continuation from elsewhere in the split. */
export type RejectedKind = 'shuffled' | 'elsewhere';

export interface PreferencePair {
  /** Corpus index of the prompt's first character. */
  start: number;
  prompt: Int32Array;
  /** The characters that follow the prompt in the text, cut at the last word end that fits. */
  chosen: Int32Array;
  rejected: Int32Array;
  rejectedKind: RejectedKind;
  /** Corpus index of an 'elsewhere' rejected response; −1 for a shuffled one. */
  rejectedStart: number;
}

/** Draws before giving up on an 'elsewhere' response different from the chosen one (in practice the first differs). */
const MAX_REDRAWS = 64;

const whitespaceOf = new WeakMap<TextDataset, Uint8Array>();

/** 1 for the vocabulary codes that are whitespace (the separators between words). */
function whitespace(ds: TextDataset): Uint8Array {
  let w = whitespaceOf.get(ds);
  if (w === undefined) {
    w = Uint8Array.from(ds.vocab, (c) => (/^\s$/u.test(c) ? 1 : 0));
    whitespaceOf.set(ds, w);
  }
  return w;
}

/**
 * The text from `from`, cut at its last word end within `maxLen` characters: the largest k in
 * [1, maxLen] whose next character codes[from + k] is whitespace, or maxLen when the window holds
 * no word end. The caller guarantees from + maxLen is inside the split.
 */
function cutAtWordEnd(ds: TextDataset, from: number, maxLen: number): Int32Array {
  const space = whitespace(ds);
  let k = maxLen;
  while (k >= 1 && space[ds.codes[from + k]!] !== 1) k--;
  return ds.codes.slice(from, from + (k >= 1 ? k : maxLen));
}

/**
 * The response's words (maximal non-whitespace runs) in a seeded random order, the whitespace
 * between them kept where it was: same length and characters, different order. Null when the
 * order came out unchanged (one word, or repeated words).
 */
function shuffleWords(ds: TextDataset, response: Int32Array, rng: Rng): Int32Array | null {
  const space = whitespace(ds);
  // response = gaps[0] words[0] gaps[1] words[1] … words[n−1] gaps[n], each gap possibly empty.
  const words: Int32Array[] = [];
  const gaps: Int32Array[] = [];
  let i = 0;
  for (;;) {
    const g = i;
    while (i < response.length && space[response[i]!] === 1) i++;
    gaps.push(response.subarray(g, i));
    if (i === response.length) break;
    const w = i;
    while (i < response.length && space[response[i]!] !== 1) i++;
    words.push(response.subarray(w, i));
  }
  if (words.length < 2) return null;
  const order = rng.shuffle(words.map((_, k) => k));
  const out = new Int32Array(response.length);
  let at = 0;
  gaps.forEach((gap, k) => {
    out.set(gap, at);
    at += gap.length;
    if (k < words.length) {
      const word = words[order[k]!]!;
      out.set(word, at);
      at += word.length;
    }
  });
  return sameCodes(out, response) ? null : out;
}

function sameCodes(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

/**
 * One pair from `split`: the prompt (Lp characters at a uniform position), the chosen true
 * continuation cut at a word end, and a rejected response — with probability ½ the chosen words
 * shuffled (when that changes nothing: the other kind), else the continuation of another uniform
 * position of the same split, cut at its own word end (so the two lengths differ in general).
 */
export function drawPair(ds: TextDataset, split: Split, seqLen: number, rng: Rng): PreferencePair {
  const Lp = promptLength(seqLen);
  const maxLen = maxResponseLength(seqLen);
  const { start, end } = ds.splits[split];
  // A prompt start needs Lp + maxLen characters and one more to see where the last word ends.
  const starts = end - start - Lp - maxLen;
  if (starts < 1) throw new Error(`preference pairs: split '${split}' holds ${end - start} characters; seqLen ${seqLen} needs more than ${Lp + maxLen}`);
  const s = start + rng.int(starts);
  const prompt = ds.codes.slice(s, s + Lp);
  const chosen = cutAtWordEnd(ds, s + Lp, maxLen);
  const shuffled = rng.next() < 0.5 ? shuffleWords(ds, chosen, rng) : null;
  if (shuffled !== null) return { start: s, prompt, chosen, rejected: shuffled, rejectedKind: 'shuffled', rejectedStart: -1 };
  for (let k = 0; k < MAX_REDRAWS; k++) {
    const q = start + rng.int(end - start - maxLen);
    const rejected = cutAtWordEnd(ds, q, maxLen);
    if (!sameCodes(rejected, chosen)) return { start: s, prompt, chosen, rejected, rejectedKind: 'elsewhere', rejectedStart: q };
  }
  throw new Error(`preference pairs: no response different from the chosen one in ${MAX_REDRAWS} draws (split '${split}')`);
}

/**
 * A batch of pairs as next-character sequences, [P, B, t] row-major: for each response
 * seq = prompt ++ response ++ padding (code 0) over t + 1 characters, x = seq[0..t−1],
 * y = seq[1..t], and m = 1 exactly at the targets that are response characters
 * (positions Lp − 1 … Lp + len − 2). Padding follows the response, so under causal attention no
 * response target ever sees it.
 */
export interface PairArrays {
  xw: Int32Array;
  yw: Int32Array;
  mw: Float32Array;
  xl: Int32Array;
  yl: Int32Array;
  ml: Float32Array;
}

function encode(prompt: Int32Array, response: Int32Array, seqLen: number, x: Int32Array, y: Int32Array, m: Float32Array, off: number): void {
  const seq = new Int32Array(seqLen + 1);
  seq.set(prompt, 0);
  seq.set(response, prompt.length);
  x.set(seq.subarray(0, seqLen), off);
  y.set(seq.subarray(1), off);
  m.fill(1, off + prompt.length - 1, off + prompt.length - 1 + response.length);
}

/** Endless pair batches; member i draws from Rng.from(seeds[i]).fork(split), so a P-member stream equals P one-member streams. */
export function pairBatches(ds: TextDataset, split: Split, seeds: readonly number[], batchSize: number, seqLen: number): { next(): PairArrays } {
  checkCommon(`preference pairs(${ds.name}, '${split}')`, split, seeds, batchSize);
  const rngs = seeds.map((s) => Rng.from(s).fork(split));
  const n = seeds.length * batchSize * seqLen;
  return {
    next() {
      const a: PairArrays = {
        xw: new Int32Array(n),
        yw: new Int32Array(n),
        mw: new Float32Array(n),
        xl: new Int32Array(n),
        yl: new Int32Array(n),
        ml: new Float32Array(n),
      };
      rngs.forEach((rng, p) => {
        for (let b = 0; b < batchSize; b++) {
          const pair = drawPair(ds, split, seqLen, rng);
          const off = (p * batchSize + b) * seqLen;
          encode(pair.prompt, pair.chosen, seqLen, a.xw, a.yw, a.mw, off);
          encode(pair.prompt, pair.rejected, seqLen, a.xl, a.yl, a.ml, off);
        }
      });
      return a;
    },
  };
}
