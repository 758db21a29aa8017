// The linter and the formatter, run with the tests so that CI runs them (`npm run lint` is the
// same check from the command line; `npm run format` rewrites the files).
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
/** .ts, .tsx and .mjs files under `dir`: what `npm run lint` checks. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sourceFiles(path);
    return /\.(tsx?|mjs)$/.test(name) ? [path] : [];
  });
}

const eslint = () => new ESLint({ cwd: root, overrideConfigFile: join(root, 'test/lint/eslint.config.mjs') });

describe('lint and format', () => {
  it('ESLint reports nothing in src, tasks and test', async () => {
    const results = await eslint().lintFiles(['src', 'tasks', 'test']);
    const problems = results.flatMap((r) => r.messages.map((m) => `${r.filePath.slice(root.length)}:${m.line}:${m.column} ${m.ruleId ?? ''} ${m.message}`));
    expect(problems).toEqual([]);
  }, 120_000);

  it('the rules that guard the standards are on: no Math.random in library code, no unused names, no bare any', async () => {
    const lint = async (code: string, filePath: string) =>
      (await eslint().lintText(code, { filePath: join(root, filePath) }))[0]!.messages.map((m) => m.ruleId);
    expect(await lint('export const x = Math.random();\n', 'src/optim/example.ts')).toEqual(['no-restricted-properties']);
    expect(await lint('export const x = Math.random();\n', 'tasks/example.ts')).toEqual(['no-restricted-properties']);
    expect(await lint('export const x = Math.random();\n', 'test/example.test.ts')).toEqual([]);
    expect(await lint('const unused = 1;\nexport const y: any = 2;\n', 'src/optim/example.ts')).toEqual([
      '@typescript-eslint/no-unused-vars',
      '@typescript-eslint/no-explicit-any',
    ]);
  }, 60_000);

  it('every source file is formatted by Prettier with the package.json settings', async () => {
    const unformatted: string[] = [];
    for (const file of ['src', 'tasks', 'test'].flatMap((d) => sourceFiles(join(root, d)))) {
      const options = await prettier.resolveConfig(file);
      expect(options, 'prettier settings in package.json').toMatchObject({ singleQuote: true, printWidth: 160 });
      if (!(await prettier.check(await readFile(file, 'utf8'), { ...options, filepath: file }))) unformatted.push(file.slice(root.length));
    }
    expect(unformatted).toEqual([]);
  }, 120_000);
});
