/** Config checks and canonical-name helpers shared by the synthetic tasks. */

function show(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/** The error every synthetic config check throws: task, field, bad value and what is allowed. */
export function configError(task: string, field: string, value: unknown, allowed: string): Error {
  return new Error(`${task}: config field '${field}' must be ${allowed}; got ${show(value)}`);
}

/** Refuses non-objects and unknown fields (a typo such as 'dimm' must not fall back to a default). */
export function requireFields(task: string, config: unknown, allowed: readonly string[]): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error(`${task}: config must be an object with fields ${allowed.join(', ')}; got ${show(config)}`);
  }
  for (const key of Object.keys(config)) {
    if (!allowed.includes(key)) throw new Error(`${task}: unknown config field '${key}'; allowed fields: ${allowed.join(', ')}`);
  }
}

export function requireInt(task: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw configError(task, field, value, `an integer >= ${min}`);
  }
  return value;
}

export function requireNumber(task: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw configError(task, field, value, `a finite number >= ${min}`);
  }
  return value;
}

export function requireBoolean(task: string, field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw configError(task, field, value, 'true or false');
  return value;
}

export function requireSeeds(task: string, seeds: readonly number[]): void {
  if (seeds.length === 0) throw new Error(`${task}: seeds must hold one seed per member (at least one); got []`);
}

/**
 * Parses `name` with `pattern`, builds the config and insists the name is the canonical one for
 * it, so every accepted name round-trips exactly (no 'd010' or 'k1e3' aliases).
 */
export function parseCanonical<C>(
  name: string,
  family: string,
  form: string,
  pattern: RegExp,
  build: (groups: string[]) => C,
  canonical: (config: C) => string,
): C {
  const m = pattern.exec(name);
  const fail = () => new Error(`${family}: '${name}' is not a valid ${family} task name; expected ${form}`);
  if (m === null) throw fail();
  let config: C;
  try {
    config = build(m.slice(1).map((g) => g ?? ''));
  } catch (e) {
    throw new Error(`${fail().message} (${(e as Error).message})`);
  }
  if (canonical(config) !== name) throw fail();
  return config;
}
