// File names for the plots: built from task names, which can hold paths, dots and capitals.

/** Lowercase, only [a-z0-9-_.], no leading dot (a hidden file) and no `..`; never empty. */
export function safeFileStem(text: string): string {
  const stem = text
    .toLowerCase()
    .replace(/[^a-z0-9\-_.]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  return stem === '' ? 'plot' : stem.slice(0, 120);
}

/** Gives each stem a unique name (`name`, `name-2`, …): two task names can map to one stem. */
export function uniqueStems(stems: string[]): string[] {
  const seen = new Set<string>();
  return stems.map((stem) => {
    let name = stem;
    for (let i = 2; seen.has(name); i += 1) name = `${stem}-${i}`;
    seen.add(name);
    return name;
  });
}
