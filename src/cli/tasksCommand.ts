import { existsSync } from 'node:fs';
import { taskFromName, taskNameForms } from '../../tasks/registry.js';
import { loadSuite, SHIPPED_SUITES, shippedSuitePath } from '../../tasks/suites.js';

/** `lopt tasks`: the task-name forms, one task's metadata, or a suite's tasks. */
export function describeTasks(o: { task?: string; suite?: string }): string[] {
  const lines: string[] = [];
  if (o.task) {
    const t = taskFromName(o.task);
    lines.push(JSON.stringify(t.meta, null, 2));
    return lines;
  }
  if (o.suite) {
    const path = existsSync(o.suite) ? o.suite : shippedSuitePath(o.suite);
    if (!existsSync(path)) throw new Error(`no suite file '${o.suite}' (shipped suites: ${SHIPPED_SUITES.join(', ')})`);
    const suite = loadSuite(path);
    lines.push(`${suite.name}: ${suite.description}`);
    for (const e of suite.tasks) {
      const t = taskFromName(e.task);
      const factor = e.factor === undefined ? '' : ` ×${e.factor}`;
      lines.push(`  ${t.meta.name.padEnd(48)} ${String(e.steps).padStart(6)} steps  ${(e.axis + factor).padEnd(16)} ${t.meta.paramCount} params`);
    }
    return lines;
  }
  lines.push('task names:');
  for (const f of taskNameForms()) lines.push(`  ${f}`);
  lines.push(`shipped suites: ${SHIPPED_SUITES.join(', ')} (lopt tasks --suite NAME)`);
  return lines;
}
