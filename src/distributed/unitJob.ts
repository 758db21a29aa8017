// What travels through the queue: a job per truncation unit, its id, and its result. Jobs carry
// data only — the unit's input, who made it (run, session, outer step, estimator, unit) and what
// must match for the result to be byte-identical (lopt's version and build, the recipe hash, the
// backend and the kernels) — and every field is checked on arrival.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { gitCommit } from '../checkpoint/index.js';
import { truncationUnitInputSchema } from '../meta/truncationUnitSchema.js';
import type { TruncationUnitInput, TruncationUnitOutput } from '../meta/truncationUnit.js';
import { printable } from '../text/printable.js';
import { decodeWire, encodeWire } from './wireCodec.js';

/** BullMQ's key prefix and queue name: every lopt host and worker on one Redis database shares them. */
export const QUEUE_PREFIX = 'lopt';
export const QUEUE_NAME = 'units';

/** What a result is only byte-identical under: the same code, the same backend, the same kernels. */
export interface Build {
  /** package.json's version. */
  version: string;
  /** The git commit of the code, when it runs from a checkout (null from a package). */
  commit: string | null;
  backend: string;
  kernels: 'native' | 'ops';
}

let ownVersion: string | undefined;
/** The version in lopt's own package.json (this file is src/distributed/ or dist/src/distributed/ below it). */
export function loptVersion(): string {
  if (ownVersion !== undefined) return ownVersion;
  for (let dir = dirname(fileURLToPath(import.meta.url)), i = 0; i < 4; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    if (pkg.name === 'lopt' && typeof pkg.version === 'string') return (ownVersion = pkg.version);
  }
  throw new Error("lopt: cannot find lopt's package.json to read its version");
}

export async function ownBuild(backend: string, kernels: 'native' | 'ops'): Promise<Build> {
  const here = dirname(fileURLToPath(import.meta.url));
  return { version: loptVersion(), commit: (await gitCommit(here)) ?? null, backend, kernels };
}

/** Why `theirs` cannot run on `mine`, or null when it can. */
export function buildMismatch(mine: Build, theirs: Build): string | null {
  if (mine.version !== theirs.version) return `it was made by lopt ${theirs.version}, this worker runs lopt ${mine.version}`;
  if (mine.commit !== null && theirs.commit !== null && mine.commit !== theirs.commit) {
    return `it was made at commit ${theirs.commit.slice(0, 12)}, this worker runs commit ${mine.commit.slice(0, 12)}`;
  }
  if (mine.backend !== theirs.backend) return `it needs the ${theirs.backend} backend, this worker runs ${mine.backend}`;
  if (mine.kernels !== theirs.kernels) return `it needs the ${theirs.kernels} kernels, this worker runs ${mine.kernels} (LOPT_KERNELS)`;
  return null;
}

/** Names a run in job ids: the same for every session of one run folder and recipe. */
export function runIdOf(runDir: string, recipeHash: string): string {
  return createHash('sha256').update(`${runDir}\n${recipeHash}`).digest('hex').slice(0, 12);
}

export interface UnitJobTag {
  runId: string;
  /** One host process's life: jobs of an earlier (dead) session of the same run are never used. */
  session: string;
  outerStep: number;
  estimator: number;
  unit: number;
}

/** `<run>.<session>.s<outer step>.e<estimator>.u<unit>` — BullMQ ids may not hold ':'. */
export function unitJobId(t: UnitJobTag): string {
  return `${t.runId}.${t.session}.s${t.outerStep}.e${t.estimator}.u${t.unit}`;
}

const token = z.string().regex(/^[a-z0-9]{1,40}$/, { error: 'must be 1–40 lowercase letters or digits' });
const index = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const buildSchema = z.strictObject({
  version: z.string().max(100),
  commit: z
    .string()
    .regex(/^[0-9a-f]{40,64}$/)
    .nullable(),
  backend: z.string().max(40),
  kernels: z.enum(['native', 'ops']),
});

const jobSchema = z.strictObject({
  build: buildSchema,
  recipeHash: z.string().regex(/^[0-9a-f]{8,128}$/),
  runId: token,
  session: token,
  outerStep: index,
  estimator: index,
  unit: index,
  input: z.unknown(),
});

export type UnitJobData = Omit<z.output<typeof jobSchema>, 'input'> & { input: unknown };

export function unitJobData(tag: UnitJobTag, build: Build, recipeHash: string, input: TruncationUnitInput): UnitJobData {
  return { build, recipeHash, ...tag, input: encodeWire(input) };
}

/** A job's data, checked field by field, with its unit input decoded and checked by the unit's schema. */
export function readUnitJob(data: unknown): { job: UnitJobData; input: TruncationUnitInput } {
  const job = jobSchema.safeParse(data);
  if (!job.success) throw new Error(`not a lopt unit job: ${issueOf(job.error)}`);
  const input = truncationUnitInputSchema.safeParse(decodeWire(job.data.input));
  if (!input.success) throw new Error(`the unit's input is malformed: ${issueOf(input.error)}`);
  return { job: job.data, input: input.data };
}

/** What a worker returns for a job. */
export interface UnitResult {
  worker: { id: string; host: string };
  /** Seconds the unit ran on the worker (queue latency = round trip − this). */
  seconds: number;
  output: TruncationUnitOutput;
}

const f32 = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'must be a float32 array' });
const resultSchema = z.strictObject({
  worker: z.strictObject({ id: z.string().max(300), host: z.string().max(255) }),
  seconds: z.number().min(0),
  output: z.strictObject({
    losses: f32,
    rawLosses: f32,
    resetStep: z.custom<Int32Array>((v) => v instanceof Int32Array, { error: 'must be an int32 array' }),
    particleStates: z.array(z.strictObject({ episode: index, step: index, length: index })),
    state: z.strictObject({ params: z.array(f32), optTensors: z.array(f32), optNumbers: z.array(z.number()) }),
    finalLosses: f32.optional(),
  }),
});

export function encodeUnitResult(result: UnitResult): unknown {
  return encodeWire(result);
}

/** A job's return value, checked; the sizes are checked against the unit by the estimator. */
export function readUnitResult(value: unknown): UnitResult {
  const parsed = resultSchema.safeParse(decodeWire(value));
  if (!parsed.success) throw new Error(`a worker returned a malformed result: ${issueOf(parsed.error)}`);
  return parsed.data;
}

function issueOf(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const where = issue.path.length > 0 ? `${printable(issue.path.map(String).join('.'), 80)}: ` : '';
  return `${where}${printable(issue.message, 200)}`;
}
