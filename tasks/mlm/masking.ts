// BERT's masked-LM corruption with whole-word masking, on character tokens. A pure function of a
// token window, a character-kind table and a seeded stream, so tests can run it on hand-made text.
import type { Rng } from '../../src/random/rng.js';

/** The fraction of a sequence's tokens BERT predicts (masked_lm_prob). */
export const MASKED_LM_PROB = 0.15;

/** What a character is to the masking: never a candidate, part of a word, a joiner inside one, or a group of its own. */
export const CharKind = { space: 0, word: 1, joiner: 2, punctuation: 3 } as const;
export type CharKind = (typeof CharKind)[keyof typeof CharKind];

/**
 * The kind of each vocabulary character. Word characters are letters and digits (Unicode \p{L},
 * \p{N}); the apostrophes ' and ’ are joiners, part of a word only between two word characters
 * ("whale's", "don't" are one word: one English word, where BERT's punctuation split would make
 * three); whitespace is no candidate (BERT's whitespace is not a token); everything else (., ;
 * -, —, quotes) is punctuation, a group of one, as BERT's BasicTokenizer splits it off.
 */
export function charKinds(vocab: readonly string[]): Uint8Array {
  return Uint8Array.from(vocab, (c) => {
    if (/^\s$/u.test(c)) return CharKind.space;
    if (/^[\p{L}\p{N}]$/u.test(c)) return CharKind.word;
    if (c === "'" || c === '\u2019') return CharKind.joiner;
    return CharKind.punctuation;
  });
}

/** Python 3's round(x) to an integer: halves go to the even neighbour (round(1.5) = 2, round(4.5) = 4). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const frac = x - f;
  if (frac < 0.5) return f;
  if (frac > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * How many of T tokens BERT's create_masked_lm_predictions predicts:
 * n = min(max_predictions_per_seq, max(1, round(T·masked_lm_prob))), with round half-to-even
 * (Python 3) on the float product, as the reference computes it. max_predictions_per_seq is T here:
 * no cap beyond the 15% (BERT's 20 per 128 tokens only bounds its fixed-size output arrays).
 */
export function predictionCount(T: number): number {
  return Math.min(T, Math.max(1, roundHalfEven(T * MASKED_LM_PROB)));
}

/**
 * The candidate groups of a token window as [start, length] runs: each maximal run of word
 * characters, with joiners that sit between two word characters, is one group (a whole word: BERT's
 * WordPiece token and its ## continuations); each other non-space character is a group of one;
 * spaces belong to none. A word cut by the window's edge is a group of its characters inside the
 * window; a joiner at the edge or beside a non-word character is punctuation.
 */
export function candidateGroups(tokens: ArrayLike<number>, kinds: ArrayLike<number>): Array<[number, number]> {
  const T = tokens.length;
  const kind = (i: number) => kinds[tokens[i]!]!;
  const inWord = (i: number) =>
    kind(i) === CharKind.word || (kind(i) === CharKind.joiner && i > 0 && i < T - 1 && kind(i - 1) === CharKind.word && kind(i + 1) === CharKind.word);
  const groups: Array<[number, number]> = [];
  let i = 0;
  while (i < T) {
    if (inWord(i)) {
      const start = i;
      while (i < T && inWord(i)) i++;
      groups.push([start, i - start]);
    } else {
      if (kind(i) !== CharKind.space) groups.push([i, 1]);
      i++;
    }
  }
  return groups;
}

/** A corrupted window: input ids (with [MASK] = vocabSize) and 1 at the positions to predict. */
export interface MaskedWindow {
  input: Int32Array;
  weight: Float32Array;
}

/**
 * BERT's create_masked_lm_predictions (google-research/bert create_pretraining_data.py, with
 * do_whole_word_mask) on one window of character ids in [0, vocabSize):
 *   n = predictionCount(T); shuffle the candidate groups (seeded Fisher–Yates); walk them, stopping
 *   once n positions are predicted and skipping a group that would overshoot n; for each position
 *   of a taken group draw r₁: r₁ < 0.8 → [MASK] (id vocabSize); else draw r₂: r₂ < 0.5 → keep the
 *   character; else a character uniform over the whole vocabulary [0, vocabSize) (it may equal the
 *   original). Every position of a taken group is predicted (weight 1), whatever its input became.
 * Fewer than n are predicted when no remaining group fits (whole words can overshoot n); groups
 * never overlap here, so BERT's covered-index check has nothing to skip.
 */
export function maskWholeWords(tokens: ArrayLike<number>, kinds: ArrayLike<number>, vocabSize: number, rng: Rng): MaskedWindow {
  const T = tokens.length;
  const input = Int32Array.from(tokens);
  const weight = new Float32Array(T);
  const n = predictionCount(T);
  const groups = rng.shuffle(candidateGroups(tokens, kinds));
  let predicted = 0;
  for (const [start, length] of groups) {
    if (predicted >= n) break;
    if (predicted + length > n) continue;
    for (let i = start; i < start + length; i++) {
      weight[i] = 1;
      if (rng.next() < 0.8) input[i] = vocabSize;
      else if (rng.next() >= 0.5) input[i] = rng.int(vocabSize);
    }
    predicted += length;
  }
  return { input, weight };
}
