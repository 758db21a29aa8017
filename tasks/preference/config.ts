// The preference task's configuration and its canonical name. The model is the causal character
// transformer of tasks/transformer.ts; heads are not in the name but follow from the width.
import { z } from 'zod';
import { intIn, oneOf } from '../../src/schema/fields.js';
import { parseOptions } from '../../src/schema/parseOptions.js';
import { printable } from '../../src/text/printable.js';
import type { TransformerConfig } from '../transformer.js';
import type { Parametrization } from '../types.js';

export const PREFERENCE_LOSSES = ['dpo', 'simpo', 'mipo'] as const;
export type PreferenceLoss = (typeof PREFERENCE_LOSSES)[number];

/** Width of one attention head when it divides the width; narrower models use a single head. */
export const HEAD_WIDTH = 16;

const preferenceFields = {
  loss: oneOf<PreferenceLoss>(PREFERENCE_LOSSES),
  /** d_model. */
  width: intIn(1, 8192),
  /** Number of blocks. */
  depth: intIn(1, 64),
  /** t: positions the model reads; a prompt of ⌊t/2⌋ characters leaves room for a response of up to t + 1 − ⌊t/2⌋. */
  seqLen: intIn(4, 4096),
  /** Preference pairs per member and step. */
  batchSize: intIn(1, 65536),
  parametrization: oneOf<Parametrization>(['mup', 'sp']),
};

export type PreferenceConfig = z.output<z.ZodObject<typeof preferenceFields>>;

/** Throws (naming the task, field, value and what is allowed) unless `cfg` is a valid PreferenceConfig. */
export function validatePreferenceConfig(cfg: unknown): PreferenceConfig {
  return parseOptions('preference task', preferenceFields, cfg);
}

/** Heads of the model: width/16 (d_head = 16) when 16 divides the width, else 1 head of the full width. */
export function headsFor(width: number): number {
  return width % HEAD_WIDTH === 0 ? width / HEAD_WIDTH : 1;
}

/** The causal transformer that is both the policy and the reference model of a preference task. */
export function modelConfigOf(cfg: PreferenceConfig): TransformerConfig {
  return {
    width: cfg.width,
    depth: cfg.depth,
    heads: headsFor(cfg.width),
    seqLen: cfg.seqLen,
    batchSize: cfg.batchSize,
    parametrization: cfg.parametrization,
  };
}

/**
 * Accepted names. Heads are not named: d_head = 16 when 16 divides the width (w32 → 2 heads),
 * otherwise one head (w8, w24 → 1 head).
 */
export const PREF_NAME_FORM = 'pref-mobydick-{dpo|simpo|mipo}-w{width}-d{depth}-t{seqLen}-b{batchSize}-{mup|sp}';
const NAME_EXAMPLE = 'pref-mobydick-dpo-w32-d1-t32-b16-mup';
const NAME_RE = /^pref-mobydick-(dpo|simpo|mipo)-w([1-9]\d*)-d([1-9]\d*)-t([1-9]\d*)-b([1-9]\d*)-(mup|sp)$/;

/** Canonical name, e.g. pref-mobydick-dpo-w32-d1-t32-b16-mup. */
export function preferenceName(cfg: PreferenceConfig): string {
  const c = validatePreferenceConfig(cfg);
  return `pref-mobydick-${c.loss}-w${c.width}-d${c.depth}-t${c.seqLen}-b${c.batchSize}-${c.parametrization}`;
}

/** The config a canonical preference name stands for; exactly the names preferenceName emits. */
export function parsePreferenceName(name: string): PreferenceConfig {
  const m = NAME_RE.exec(name);
  if (m === null) {
    throw new Error(`preference task: cannot parse name '${printable(String(name), 120)}'; expected ${PREF_NAME_FORM}, e.g. ${NAME_EXAMPLE}`);
  }
  return validatePreferenceConfig({
    loss: m[1],
    width: Number(m[2]),
    depth: Number(m[3]),
    seqLen: Number(m[4]),
    batchSize: Number(m[5]),
    parametrization: m[6],
  });
}
