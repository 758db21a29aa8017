import { CheckpointError, printable } from './error.js';
import {
  CHECKPOINT_FORMAT,
  SUPPORTED_VERSIONS,
  type Checkpoint,
  type CheckpointVersion,
  type JsonValue,
  type Provenance,
  type TensorTable,
  type TrainingState,
} from './format.js';

const TOP_KEYS = ['format', 'version', 'arch', 'config', 'theta', 'provenance', 'eval', 'training'] as const;
const TABLE_KEYS = ['names', 'shapes', 'data'] as const;
const PROVENANCE_KEYS = ['recipe', 'outerStep', 'gitCommit', 'createdAt', 'backend', 'source'] as const;
const TRAINING_KEYS = ['arrays', 'state'] as const;

/** Deep enough for any eval/state record; bounds recursion on hostile nesting. */
const MAX_JSON_DEPTH = 64;

/** Date-time as Date.toISOString() writes it (offsets and second-less forms accepted too). */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export interface ValidateOptions {
  /** When given, the checkpoint's arch must equal it. */
  arch?: string;
}

/**
 * One validator for both directions: saveCheckpoint runs it so nothing invalid is written, and
 * loadCheckpoint runs it on decoded (untrusted) data. It returns a fresh object holding only the
 * known fields (the Float32Arrays themselves are not copied), so a caller never sees a
 * half-checked or aliased structure.
 */
export function validateCheckpoint(value: unknown, file: string, options: ValidateOptions = {}): Checkpoint {
  const fail = (field: string | undefined, detail: string): never => {
    throw new CheckpointError(file, field, detail);
  };

  if (!isPlainObject(value)) fail(undefined, `not a lopt checkpoint: expected a map at the top level, found ${describe(value)}`);
  const top = value as Record<string, unknown>;

  // format and version first: a file of another kind or a newer version should say so rather
  // than list the keys this version does not know.
  if (top.format !== CHECKPOINT_FORMAT) {
    fail('format', `expected '${CHECKPOINT_FORMAT}', found ${describe(top.format)}; not a lopt checkpoint`);
  }
  if (typeof top.version !== 'number' || !SUPPORTED_VERSIONS.includes(top.version)) {
    fail('version', `found ${describe(top.version)}; this lopt reads version ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const unknown = Object.keys(top).filter((k) => !(TOP_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    fail(undefined, `unknown top-level key${unknown.length > 1 ? 's' : ''} ${unknown.map(quote).join(', ')}; allowed: ${TOP_KEYS.join(', ')}`);
  }

  if (typeof top.arch !== 'string' || top.arch.length === 0) fail('arch', `expected a non-empty string, found ${describe(top.arch)}`);
  const arch = top.arch as string;
  if (options.arch !== undefined && arch !== options.arch) {
    fail('arch', `checkpoint is for ${quote(arch)}, expected ${quote(options.arch)}`);
  }

  const out: Checkpoint = {
    format: CHECKPOINT_FORMAT,
    version: top.version as CheckpointVersion,
    arch,
    config: validateConfig(top.config, fail),
    theta: validateTable(top.theta, 'theta', fail),
    provenance: validateProvenance(top.provenance, fail),
  };
  if (top.eval !== undefined) out.eval = validateJsonObject(top.eval, 'eval', fail);
  if (top.training !== undefined) out.training = validateTraining(top.training, fail);
  return out;
}

type Fail = (field: string | undefined, detail: string) => never;

function validateConfig(value: unknown, fail: Fail): Checkpoint['config'] {
  if (!isPlainObject(value)) fail('config', `expected a map of number, string or boolean, found ${describe(value)}`);
  const out: Checkpoint['config'] = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const field = `config.${printable(key)}`;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) fail(field, `expected a finite number, found ${describe(v)}`);
    } else if (typeof v !== 'string' && typeof v !== 'boolean') {
      fail(field, `expected a number, string or boolean (config is flat), found ${describe(v)}`);
    }
    setOwn(out, key, v as number | string | boolean);
  }
  return out;
}

/**
 * `finite`: theta must be finite; the trainer's arrays may not be (a diverged inner run is state
 * the resumed run must continue from exactly).
 */
function validateTable(value: unknown, label: string, fail: Fail, finite = true): TensorTable {
  expectKeys(value, label, TABLE_KEYS, true, fail);
  const table = value as Record<string, unknown>;
  const { names, shapes, data } = table;
  if (!Array.isArray(names)) fail(`${label}.names`, `expected an array of strings, found ${describe(names)}`);
  if (!Array.isArray(shapes)) fail(`${label}.shapes`, `expected an array of shapes, found ${describe(shapes)}`);
  if (!Array.isArray(data)) fail(`${label}.data`, `expected an array of Float32Array, found ${describe(data)}`);
  const n = (names as unknown[]).length;
  if ((shapes as unknown[]).length !== n || (data as unknown[]).length !== n) {
    fail(label, `${n} names, ${(shapes as unknown[]).length} shapes and ${(data as unknown[]).length} data arrays; the three lists must have the same length`);
  }

  const out: TensorTable = { names: [], shapes: [], data: [] };
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const name = (names as unknown[])[i];
    if (typeof name !== 'string' || name.length === 0) fail(`${label}.names[${i}]`, `expected a non-empty string, found ${describe(name)}`);
    const nameStr = name as string;
    const first = seen.get(nameStr);
    if (first !== undefined) fail(`${label}.names[${i}]`, `duplicate name ${quote(nameStr)} (also at [${first}]); names must be unique`);
    seen.set(nameStr, i);
    const field = `${label} ${quote(nameStr)}`;

    const shape = (shapes as unknown[])[i];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(field, `shape must be an array of non-negative integers, found ${describe(shape)}`);
    }
    const dims = (shape as number[]).slice();
    const size = dims.reduce((a, b) => a * b, 1);

    const values = (data as unknown[])[i];
    if (!(values instanceof Float32Array)) fail(field, `data must be a Float32Array, found ${describe(values)}`);
    const arr = values as Float32Array;
    if (arr.length !== size) fail(field, `shape [${dims.join(',')}] needs ${size} values, found ${arr.length}`);
    for (let j = 0; finite && j < arr.length; j++) {
      const x = arr[j] as number;
      // x - x is 0 for finite x and NaN for NaN/±Infinity: one comparison per element.
      if (x - x !== 0) fail(field, `value ${j} of ${arr.length} is ${x}; values must be finite`);
    }

    out.names.push(nameStr);
    out.shapes.push(dims);
    out.data.push(arr);
  }
  return out;
}

function validateProvenance(value: unknown, fail: Fail): Provenance {
  expectKeys(value, 'provenance', PROVENANCE_KEYS, false, fail);
  const p = value as Record<string, unknown>;
  const { createdAt } = p;
  if (typeof createdAt !== 'string' || !ISO_DATE_TIME.test(createdAt) || Number.isNaN(Date.parse(createdAt))) {
    fail('provenance.createdAt', `expected an ISO 8601 date-time such as '2025-01-31T12:00:00.000Z', found ${describe(createdAt)}`);
  }
  const out: Provenance = { createdAt: createdAt as string };
  for (const key of ['recipe', 'gitCommit', 'backend', 'source'] as const) {
    const v = p[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') fail(`provenance.${key}`, `expected a string, found ${describe(v)}`);
    out[key] = v as string;
  }
  if (p.outerStep !== undefined) {
    if (!Number.isSafeInteger(p.outerStep) || (p.outerStep as number) < 0) {
      fail('provenance.outerStep', `expected a non-negative integer, found ${describe(p.outerStep)}`);
    }
    out.outerStep = p.outerStep as number;
  }
  return out;
}

function validateTraining(value: unknown, fail: Fail): TrainingState {
  expectKeys(value, 'training', TRAINING_KEYS, true, fail);
  const t = value as Record<string, unknown>;
  return {
    arrays: validateTable(t.arrays, 'training.arrays', fail, false),
    state: validateJsonObject(t.state, 'training.state', fail),
  };
}

function validateJsonObject(value: unknown, field: string, fail: Fail): { [key: string]: JsonValue } {
  if (!isPlainObject(value)) fail(field, `expected a map, found ${describe(value)}`);
  return validateJson(value, field, 0, fail) as { [key: string]: JsonValue };
}

/** A deep copy of `value` if it is JSON (finite numbers, no typed arrays or other objects). */
function validateJson(value: unknown, field: string, depth: number, fail: Fail): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(field, `expected a finite number, found ${describe(value)}`);
    return value;
  }
  if (depth >= MAX_JSON_DEPTH) fail(field, `nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((v, i) => validateJson(v, `${field}[${i}]`, depth + 1, fail));
  if (isPlainObject(value)) {
    const out: { [key: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, validateJson(v, `${field}.${printable(k)}`, depth + 1, fail));
    return out;
  }
  return fail(field, `expected a JSON value (null, boolean, finite number, string, array or map), found ${describe(value)}`);
}

/** `value` must be a map whose keys are among `allowed` (and, when `allRequired`, all of them present). */
function expectKeys(value: unknown, field: string, allowed: readonly string[], allRequired: boolean, fail: Fail): void {
  if (!isPlainObject(value)) fail(field, `expected a map with keys ${allowed.join(', ')}, found ${describe(value)}`);
  const keys = Object.keys(value as object);
  const unknown = keys.filter((k) => !allowed.includes(k));
  if (unknown.length > 0) fail(field, `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map(quote).join(', ')}; allowed: ${allowed.join(', ')}`);
  if (allRequired) {
    const missing = allowed.filter((k) => (value as Record<string, unknown>)[k] === undefined);
    if (missing.length > 0) fail(field, `missing ${missing.join(', ')}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Defines rather than assigns, so a key named "__proto__" stays a plain own property. */
function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function quote(s: string): string {
  return `'${printable(s)}'`;
}

/** A short description of what was found, for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return `the string "${printable(value).replace(/"/g, '\\"')}"`;
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `the integer ${value} (out of the safe range)`;
    case 'object':
      break;
    default:
      return `a ${typeof value}`;
  }
  if (Array.isArray(value)) {
    const shown = value.length <= 8 && value.every((v) => typeof v === 'number') ? ` [${value.join(',')}]` : '';
    return `an array of ${value.length}${shown}`;
  }
  if (ArrayBuffer.isView(value)) {
    const n = 'length' in value ? (value as { length: number }).length : value.byteLength;
    return `a ${value.constructor.name} of ${n}`;
  }
  if (isPlainObject(value)) return 'a map';
  const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === 'string' && ctor !== '' ? `a ${ctor}` : 'an object';
}
