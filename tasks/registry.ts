import { CONV_NAME_FORM, convTask, parseConvName } from './conv.js';
import { MLP_NAME_FORM, mlpTask, parseMlpName } from './mlp.js';
import { TRANSFORMER_NAME_FORM, parseTransformerName, transformerTask } from './transformer.js';
import { MLM_NAME_FORM, mlmTask, parseMlmName } from './mlm/mlmTask.js';
import { PREF_NAME_FORM, parsePreferenceName, preferenceTask } from './preference/preferenceTask.js';
import {
  logisticRegressionTask,
  noisyQuadraticTask,
  parseLogisticRegressionName,
  parseNoisyQuadraticName,
  parseQuadraticName,
  parseRosenbrockName,
  quadraticTask,
  rosenbrockTask,
} from './synthetic/index.js';
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
  { prefix: 'conv-', form: CONV_NAME_FORM, build: (n) => convTask(parseConvName(n)) },
  { prefix: 'transformer-', form: TRANSFORMER_NAME_FORM, build: (n) => transformerTask(parseTransformerName(n)) },
  { prefix: 'mlm-', form: MLM_NAME_FORM, build: (n) => mlmTask(parseMlmName(n)) },
  { prefix: 'pref-', form: PREF_NAME_FORM, build: (n) => preferenceTask(parsePreferenceName(n)) },
  { prefix: 'quadratic-', form: 'quadratic-d<dim>-k<condition>[-diag]', build: (n) => quadraticTask(parseQuadraticName(n)) },
  {
    prefix: 'noisy-quadratic-',
    form: 'noisy-quadratic-d<dim>-b<batch>',
    build: (n) => noisyQuadraticTask(parseNoisyQuadraticName(n)),
  },
  { prefix: 'rosenbrock-', form: 'rosenbrock-d<dim>', build: (n) => rosenbrockTask(parseRosenbrockName(n)) },
  {
    prefix: 'logreg-',
    form: 'logreg-d<dim>-c<classes>-b<batch>[-n<points>]',
    build: (n) => logisticRegressionTask(parseLogisticRegressionName(n)),
  },
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
