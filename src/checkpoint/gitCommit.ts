// Provenance: the commit a checkpoint was made at, read from the repository (Node only).
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/**
 * The commit checked out in the repository containing `from` (default: the working directory),
 * read from .git without spawning git; undefined when there is none or it cannot be read.
 * Provenance only, so any failure simply gives undefined.
 */
export async function gitCommit(from: string = process.cwd()): Promise<string | undefined> {
  try {
    const gitDir = await findGitDir(resolve(from));
    if (gitDir === undefined) return undefined;
    const head = (await readFile(join(gitDir, 'HEAD'), 'utf8')).trim();
    if (isHash(head)) return head; // detached HEAD
    const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
    if (ref === undefined || ref.split('/').includes('..')) return undefined;
    // Worktrees keep refs in the main repository's directory, named by `commondir`.
    const common = await readFile(join(gitDir, 'commondir'), 'utf8').then(
      (d) => resolve(gitDir, d.trim()),
      () => gitDir,
    );
    for (const dir of [gitDir, common]) {
      const loose = await readFile(join(dir, ref), 'utf8').catch(() => undefined);
      if (loose !== undefined && isHash(loose.trim())) return loose.trim();
    }
    const packed = await readFile(join(common, 'packed-refs'), 'utf8').catch(() => '');
    for (const line of packed.split('\n')) {
      const [hash, name] = line.trim().split(' ');
      if (name === ref && hash !== undefined && isHash(hash)) return hash;
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** The .git directory for `dir` or its nearest ancestor (a `.git` file points elsewhere, as in worktrees). */
async function findGitDir(dir: string): Promise<string | undefined> {
  for (let current = dir; ; current = dirname(current)) {
    const dotGit = join(current, '.git');
    const head = await readFile(join(dotGit, 'HEAD'), 'utf8').then(
      () => true,
      () => false,
    );
    if (head) return dotGit;
    const file = await readFile(dotGit, 'utf8').catch(() => undefined);
    const pointer = file === undefined ? undefined : /^gitdir: (.+)$/m.exec(file)?.[1];
    if (pointer !== undefined) return resolve(current, pointer.trim());
    if (dirname(current) === current) return undefined;
  }
}

function isHash(s: string): boolean {
  return /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(s);
}
