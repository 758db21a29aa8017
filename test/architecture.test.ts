// The folder layout is the architecture: each room may import only the rooms listed for it, so
// data and dependencies flow one way (tree → optim → lopt → meta → evaluate → cli) and no room
// reaches back up. A new import that crosses a line fails here with the file and the import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Room → the rooms it may import (besides itself and npm packages). */
const ALLOWED: Record<string, readonly string[]> = {
  'src/text': [],
  'src/random': [],
  'src/tree': [],
  'src/kernels': [],
  'src/schema': ['src/text'],
  'src/checkpoint': ['src/text'],
  'src/backend': ['src/kernels'],
  'src/optim': ['src/tree', 'src/schema', 'src/text'],
  'src/tfjs': ['src/optim', 'src/tree', 'src/schema', 'src/text'],
  // src/optim: the preference task fits its reference model with Adam (src/optim imports no task).
  tasks: ['src/tree', 'src/random', 'src/kernels', 'src/schema', 'src/text', 'src/optim'],
  'src/lopt': ['src/optim', 'src/tree', 'src/tfjs', 'src/checkpoint', 'src/kernels', 'src/backend', 'src/random', 'src/schema', 'src/text'],
  'src/parallel': ['src/backend', 'src/kernels', 'src/text'],
  'src/meta': ['src/lopt', 'src/optim', 'src/tree', 'tasks', 'src/checkpoint', 'src/random', 'src/schema', 'src/text'],
  'src/distributed': ['src/meta', 'src/parallel', 'src/checkpoint', 'src/text'],
  'src/evaluate': ['src/meta', 'src/lopt', 'src/optim', 'src/tree', 'tasks', 'src/checkpoint', 'src/text'],
  // The browser demo: its page imports only src/browser.ts's world; its Node build script reads the tasks' images.
  'src/web': ['src/lopt', 'src/optim', 'src/tfjs', 'src/tree', 'src/random', 'src/checkpoint', 'src/backend', 'src/text', 'tasks'],
  'src/types': [],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'data' ? [] : files(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

function roomOf(path: string): string | undefined {
  const rel = relative(root, path).split('\\').join('/');
  if (rel.startsWith('tasks/')) return 'tasks';
  const m = /^src\/([^/]+)\//.exec(rel);
  return m ? `src/${m[1]}` : undefined;
}

describe('architecture', () => {
  it('every room imports only the rooms below it', () => {
    const crossings: string[] = [];
    for (const file of [...files(join(root, 'src')), ...files(join(root, 'tasks'))]) {
      const from = roomOf(file);
      if (from === undefined || !(from in ALLOWED)) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const to = roomOf(resolve(dirname(file), m[1]!));
        if (to === undefined || to === from || ALLOWED[from]!.includes(to)) continue;
        crossings.push(`${relative(root, file)} imports ${m[1]} (${from} → ${to})`);
      }
    }
    expect(crossings).toEqual([]);
  });

  it('knows every room, so a new folder is placed on purpose', () => {
    const rooms = readdirSync(join(root, 'src')).filter((n) => statSync(join(root, 'src', n)).isDirectory());
    const placed = new Set([...Object.keys(ALLOWED), 'src/cli']);
    expect(rooms.map((r) => `src/${r}`).filter((r) => !placed.has(r))).toEqual([]);
  });
});
