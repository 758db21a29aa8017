import { MLP_NAME_FORM, mlpTask, parseMlpName } from './mlp.js';
import type { Task } from './types.js';

interface TaskKind {
  /** Name prefix, including its dash. */
  prefix: string;
  /** The accepted name form, for error messages and the README. */
  form: string;
  build: (name: string) => Task;
}

const KINDS: TaskKind[] = [
  { prefix: 'mlp-', form: MLP_NAME_FORM, build: (n) => mlpTask(parseMlpName(n)) },
];

/** Every accepted task-name form. */
export function taskNameForms(): string[] {
  return KINDS.map((k) => k.form);
}

/** The task a parseable name denotes (`mlp-mnist16-w256-d3-relu-b4096-mup`, `quadratic-d100-k1000`, …). */
export function taskFromName(name: string): Task {
  if (typeof name !== 'string' || name.length === 0) {
    throw new Error(`a task name must be a non-empty string; got ${JSON.stringify(name)}`);
  }
  const kind = KINDS.find((k) => name.startsWith(k.prefix));
  if (!kind) {
    throw new Error(`unknown task '${name}'; task names have one of these forms:\n  ${taskNameForms().join('\n  ')}`);
  }
  return kind.build(name);
}
