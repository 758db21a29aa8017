// Input that carries terminal escapes — in a checkpoint, a recipe, a suite, an option, a command
// line — never reaches the terminal raw: every message that echoes it is escaped (one helper,
// src/text/printable.ts), and free text in recipes and suites is refused if it holds control
// characters. Each case runs the real CLI and looks at every byte it printed.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../src/checkpoint/index.js';
import { printable, printableMessage } from '../src/text/printable.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/src/cli/lopt.js');
/** Clear screen, red, bell, an OSC title, and the 8-bit CSI: what a hostile file would send. */
const EVIL = '\u001b[2J\u001b[31mevil\u0007\u001b]0;title\u0007\u009b1m';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lopt-terminal-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI off a terminal (no colours of its own) and returns everything it printed. */
function lopt(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0', LOPT_BACKEND: 'cpu' },
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The output refused the input with an escaped echo of it and not one control byte but newlines. */
function expectEscapedRefusal(run: { status: number | null; output: string }, mention: RegExp): void {
  expect(run.status, run.output).not.toBe(0);
  expect(run.output.match(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g) ?? [], run.output).toEqual([]);
  expect(run.output).toMatch(mention);
}

async function evilCheckpoint(name: string, edit: (c: Checkpoint) => void): Promise<string> {
  const c = await loadCheckpoint(join(root, 'checkpoints/mulo-mnist.lopt'));
  edit(c);
  const path = join(dir, `${name}.lopt`);
  await saveCheckpoint(path, c);
  return path;
}

async function json(name: string, value: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(value));
  return path;
}

const TASK = 'mlp-mnist8-w32-d1-relu-b128-mup';
const escaped = /\\u001b\[2J\\u001b\[31mevil\\u0007/;

describe('printable', () => {
  it('escapes C0 and C1 control characters, shortens, and keeps line breaks only in messages', () => {
    expect(printable(EVIL)).toBe('\\u001b[2J\\u001b[31mevil\\u0007\\u001b]0;title\\u0007\\u009b1m');
    expect(printable('a\nb\tc\u007f')).toBe('a\\u000ab\\u0009c\\u007f');
    expect(printable('x'.repeat(100), 10)).toBe('xxxxxxx...');
    expect(printableMessage(`line 1\n${EVIL}\r\n`)).toBe('line 1\n\\u001b[2J\\u001b[31mevil\\u0007\\u001b]0;title\\u0007\\u009b1m\\u000d\n');
    expect(printable('naïve μP → ok')).toBe('naïve μP → ok');
  });
});

describe('the CLI never prints control characters from input', () => {
  it('from a checkpoint: architecture, theta names, config keys and values', async () => {
    for (const [name, edit, mention] of [
      ['arch', (c: Checkpoint) => (c.arch = EVIL), escaped],
      ['theta-name', (c: Checkpoint) => (c.theta.names[0] = EVIL), escaped],
      ['config-key', (c: Checkpoint) => (c.config[EVIL] = 1), escaped],
      ['config-value', (c: Checkpoint) => (c.config['hiddenSize'] = EVIL), escaped],
    ] as const) {
      const path = await evilCheckpoint(name, edit);
      expectEscapedRefusal(lopt('eval', path, '--task', TASK, '--steps', '2', '--budget', '1'), mention);
    }
  }, 120_000);

  it('from a recipe: a key, a value, its name, a family task', async () => {
    const base = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(join(root, 'meta-train/quick.json'), 'utf8'))) as Record<string, unknown>;
    const cases: [string, Record<string, unknown>][] = [
      ['key', { ...base, [EVIL]: 1 }],
      ['value', { ...base, seed: EVIL }],
      ['name', { ...base, name: EVIL }],
      ['description', { ...base, description: EVIL }],
      ['arch', { ...base, learnedOptimizer: { arch: EVIL, config: {} } }],
      ['task', { ...base, estimators: [{ ...(base['estimators'] as object[])[0], family: { type: 'fixed', task: EVIL } }] }],
    ];
    for (const [label, recipe] of cases) {
      const path = await json(`recipe-${label}.json`, recipe);
      expectEscapedRefusal(lopt('meta-train', '--recipe', path, '--out', join(dir, `run-${label}`)), escaped);
    }
  }, 120_000);

  it('from a suite, an optimizer list, a task name and a path on the command line', async () => {
    const suite = { name: 'ok', description: 'ok', tasks: [{ task: TASK, steps: 10 }] };
    for (const [label, value, mention] of [
      // Free text is refused outright rather than echoed.
      ['name', { ...suite, name: EVIL }, /name: must not hold control characters/],
      ['description', { ...suite, description: `a\nb` }, /description: must not hold control characters/],
      ['task', { ...suite, tasks: [{ task: EVIL, steps: 10 }] }, escaped],
      ['key', { ...suite, tasks: [{ task: TASK, steps: 10, [EVIL]: 1 }] }, escaped],
    ] as const) {
      expectEscapedRefusal(lopt('tasks', '--suite', await json(`suite-${label}.json`, value)), mention);
    }
    expectEscapedRefusal(lopt('demo', '--optimizers', `adam,${EVIL}`), escaped);
    expectEscapedRefusal(lopt('tasks', '--task', EVIL), escaped);
    expectEscapedRefusal(lopt('eval', 'mulo-mnist', '--task', TASK, `--${EVIL}`), escaped);
    const folder = join(dir, EVIL);
    await mkdir(folder);
    expectEscapedRefusal(lopt('eval', join(folder, 'missing.lopt'), '--task', TASK), escaped);
  }, 120_000);
});
