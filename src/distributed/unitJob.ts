// What travels through the queue: a job per truncation unit, its id, and its result. Jobs carry
// data only — who made the unit (run, session, outer step, estimator, unit) and what must match
// for the result to be byte-identical (lopt's version and build, the recipe hash, the backend and
// the kernels) — and every field is checked on arrival. The unit's input and output (megabytes of
// float arrays) go beside the job as binary Redis values under keys derived from the job's id
// (blobCodec.ts), never named by the job itself.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { gitCommit } from '../checkpoint/index.js';
import { truncationUnitInputSchema } from '../meta/truncationUnitSchema.js';
import type { TruncationUnitInput, TruncationUnitOutput } from '../meta/truncationUnit.js';
import { printable } from '../text/printable.js';
import { decodeBlob, encodeBlob } from './blobCodec.js';

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
});

export type UnitJobData = z.output<typeof jobSchema>;

export function unitJobData(tag: UnitJobTag, build: Build, recipeHash: string): UnitJobData {
  return { build, recipeHash, ...tag };
}

/** How long a unit's input or output stays in Redis unread (the host refreshes its pending inputs' at every poll). */
export const BLOB_TTL_MS = 10 * 60_000;

export const UNIT_BLOB_PREFIX = `${QUEUE_PREFIX}:${QUEUE_NAME}:blob:`;

/** Where a job's input and its worker's output lie in Redis: derived from the job's id. */
export function unitBlobKey(jobId: string, which: 'input' | 'output'): string {
  return `${UNIT_BLOB_PREFIX}${jobId}:${which}`;
}

/** A job's data, checked field by field; its id must be the one its fields name. */
export function readUnitJob(jobId: string, data: unknown): UnitJobData {
  const job = jobSchema.safeParse(data);
  if (!job.success) throw new Error(`not a lopt unit job: ${issueOf(job.error)}`);
  if (unitJobId(job.data) !== jobId) throw new Error(`its id is not the one its fields name`);
  return job.data;
}

export function encodeUnitInput(input: TruncationUnitInput): Buffer {
  return encodeBlob(input);
}

/** A unit's input from its stored bytes, checked by the unit's schema. */
export function readUnitInput(bytes: Buffer): TruncationUnitInput {
  const input = truncationUnitInputSchema.safeParse(decodeBlob(bytes));
  if (!input.success) throw new Error(`the unit's input is malformed: ${issueOf(input.error)}`);
  return input.data;
}

/** What a worker returns for a job (its output is stored beside it, under unitBlobKey(id, 'output')). */
export interface UnitReceipt {
  worker: { id: string; host: string };
  /** Seconds the unit ran on the worker (queue latency = round trip − this). */
  seconds: number;
}

const receiptSchema = z.strictObject({
  worker: z.strictObject({ id: z.string().max(300), host: z.string().max(255) }),
  seconds: z.number().min(0),
});

export function readUnitReceipt(value: unknown): UnitReceipt {
  const parsed = receiptSchema.safeParse(value);
  if (!parsed.success) throw new Error(`a worker returned a malformed receipt: ${issueOf(parsed.error)}`);
  return parsed.data;
}

const f32 = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'must be a float32 array' });
const outputSchema = z.strictObject({
  losses: f32,
  rawLosses: f32,
  resetStep: z.custom<Int32Array>((v) => v instanceof Int32Array, { error: 'must be an int32 array' }),
  particleStates: z.array(z.strictObject({ episode: index, step: index, length: index })),
  state: z.strictObject({ params: z.array(f32), optTensors: z.array(f32), optNumbers: z.array(z.number()) }),
  finalLosses: f32.optional(),
});

export function encodeUnitOutput(output: TruncationUnitOutput): Buffer {
  return encodeBlob(output);
}

/** A unit's output from its stored bytes, checked; the sizes are checked against the unit by the estimator. */
export function readUnitOutput(bytes: Buffer): TruncationUnitOutput {
  const parsed = outputSchema.safeParse(decodeBlob(bytes));
  if (!parsed.success) throw new Error(`a worker stored a malformed output: ${issueOf(parsed.error)}`);
  return parsed.data;
}

function issueOf(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const where = issue.path.length > 0 ? `${printable(issue.path.map(String).join('.'), 80)}: ` : '';
  return `${where}${printable(issue.message, 200)}`;
}
