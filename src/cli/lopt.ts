#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { initBackend, parseBackendName } from '../backend/select.js';
import { OPTIMIZERS, isOptimizerName, type OptimizerName } from '../optim/registry.js';
import { demoOptimizers } from './demo.js';
import { describeTasks } from './tasksCommand.js';
import { describeShippedCheckpoints } from './checkpointsCommand.js';
import { convertCommand } from './convertCommand.js';
import { metaTrainCommand } from './metaTrainCommand.js';
import { workerCommand } from './workerCommand.js';
import { parseQueueUrl } from '../distributed/queueUrl.js';
import { benchCommand, evalCommand, selectCommand } from './benchCommand.js';
import { DEFAULT_BENCH_OPTIMIZERS } from '../evaluate/runBench.js';
import { writeModelCard, type CardRun } from '../evaluate/modelCard.js';
import { shippedCheckpointDir } from '../lopt/io.js';
import { printableMessage } from '../text/printable.js';
import { SHIPPED_SUITES } from '../../tasks/suites.js';

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer; got '${v}'`);
    return n;
  };
}

/** Checks a --queue URL when the command line is read (before any work); the text is kept, credentials and all, for the command. */
function queueUrl(v: string): string {
  try {
    parseQueueUrl(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^--queue: /, ''));
  }
  return v;
}

function optimizerList(v: string): OptimizerName[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!isOptimizerName(n)) {
      throw new InvalidArgumentError(`unknown optimizer '${n}'; allowed: ${Object.keys(OPTIMIZERS).join(', ')}`);
    }
  }
  return names as OptimizerName[];
}

const backendOption = new Option('--backend <name>', 'compute backend: auto, tensorflow, wasm or cpu (env LOPT_BACKEND)').argParser((v) => {
  try {
    return parseBackendName(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
});

const program = new Command('lopt')
  .description('Meta-train, evaluate and use learned optimizers on TensorFlow.js')
  .showHelpAfterError()
  // Commander's own errors echo the command line (an unknown option, a bad value): escaped too.
  .configureOutput({ outputError: (text, write) => write(printableMessage(text)) });

program
  .command('demo')
  .description('train one small MLP with every hand-designed optimizer and print the losses')
  .addOption(backendOption)
  .option('--steps <n>', 'training steps per optimizer', positiveInt('--steps'), 300)
  .option('--seed <n>', 'seed of the data and the initialization', positiveInt('--seed'), 1)
  .option('--optimizers <list>', `comma-separated subset of: ${Object.keys(OPTIMIZERS).join(', ')}`, optimizerList)
  .action(async (o: { backend?: ReturnType<typeof parseBackendName>; steps: number; seed: number; optimizers?: OptimizerName[] }) => {
    await initBackend(o.backend ? { backend: o.backend } : {});
    console.log(`MLP 32-64-64-10 on a seeded synthetic 10-class problem, ${o.steps} full-batch steps, warmup + cosine`);
    const rows = demoOptimizers({ steps: o.steps, seed: o.seed, ...(o.optimizers ? { optimizers: o.optimizers } : {}) });
    const pad = (s: string, n: number) => s.padEnd(n);
    console.log(`${pad('optimizer', 10)} ${pad('first loss', 11)} ${pad('final loss', 11)} ms/step`);
    for (const r of rows) {
      console.log(`${pad(r.optimizer, 10)} ${pad(r.initialLoss.toFixed(4), 11)} ${pad(r.finalLoss.toFixed(4), 11)} ${r.msPerStep.toFixed(2)}`);
    }
  });

program
  .command('tasks')
  .description("list the task-name forms, one task's metadata (--task), or a suite (--suite)")
  .option('--task <name>', 'a task name, e.g. mlp-mnist8-w32-d1')
  .option('--suite <name|file>', `${SHIPPED_SUITES.join(', ')}, or a suite JSON file`)
  .action((o: { task?: string; suite?: string }) => {
    for (const line of describeTasks(o)) console.log(line);
  });

program
  .command('checkpoints')
  .description('list the shipped learned optimizers (load one with loadLearnedOptimizer(name) or use its name with bench and eval)')
  .addOption(backendOption)
  .action(async (o: { backend?: ReturnType<typeof parseBackendName> }) => {
    await initBackend(o.backend ? { backend: o.backend, log: () => {} } : { log: () => {} });
    for (const line of await describeShippedCheckpoints()) console.log(line);
  });

program
  .command('meta-train')
  .description('meta-train a learned optimizer from a recipe (meta-train/*.json), with a live dashboard on a terminal')
  .option('--recipe <file>', 'recipe JSON, e.g. meta-train/quick.json')
  .option('--resume <runDir>', 'continue the run in this folder from its newest usable checkpoint')
  .option('--workers <n>', 'worker threads (0: run in this thread); default: cores, at most one per work unit', (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--workers must be an integer >= 0; got '${v}'`);
    return n;
  })
  .addOption(backendOption)
  .option('--out <dir>', 'run folder (default runs/<recipe name>-<time>)')
  .option('--continuation <file>', 'with --recipe: start from this continuation file when it exists (any machine), and keep it updated at every checkpoint')
  .option(
    '--queue <url>',
    'run the units on `lopt worker`s through this Redis queue: redis://[user:password@]host:port[/db], rediss:// for TLS (password also from LOPT_REDIS_PASSWORD)',
    queueUrl,
  )
  .option(
    '--queue-timeout <seconds>',
    'with --queue: how long Redis may be unreachable before the run stops with a checkpoint',
    positiveInt('--queue-timeout'),
    60,
  )
  .action(
    async (o: {
      recipe?: string;
      resume?: string;
      workers?: number;
      backend?: ReturnType<typeof parseBackendName>;
      out?: string;
      continuation?: string;
      queue?: string;
      queueTimeout: number;
    }) => {
      process.exitCode = await metaTrainCommand(o);
    },
  );

program
  .command('worker')
  .description('run meta-training units from a Redis queue for any `lopt meta-train --queue` host (one per machine, or more)')
  .requiredOption('--queue <url>', 'redis://[user:password@]host:port[/db], rediss:// for TLS (password also from LOPT_REDIS_PASSWORD)', queueUrl)
  .option('--threads <n>', 'units run at once, each in its own worker thread', positiveInt('--threads'), 1)
  .addOption(backendOption)
  .option('--recipe <file>', "take only this recipe's units (others are refused)")
  .option(
    '--stalled-timeout <seconds>',
    'seconds after which a unit whose worker stopped answering goes to another worker',
    positiveInt('--stalled-timeout'),
    30,
  )
  .action(async (o: { queue: string; threads: number; backend?: ReturnType<typeof parseBackendName>; recipe?: string; stalledTimeout: number }) => {
    process.exitCode = await workerCommand(o);
  });

const commaList = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

program
  .command('bench')
  .description('tune every baseline with the same budget, run learned optimizers once, and write a report (JSON, markdown, SVG, HTML)')
  .requiredOption('--suite <file|name>', `suite JSON file, or a shipped suite: ${SHIPPED_SUITES.join(', ')}`)
  .option(
    '--optimizers <list>',
    `comma-separated: ${Object.keys(OPTIMIZERS).join(', ')}, lopt:<checkpoint> (Adam always runs); default: the suite's list, else ${DEFAULT_BENCH_OPTIMIZERS.join(',')}`,
    commaList,
  )
  .option('--budget <n>', 'learning rates per baseline, half a decade apart around its usual value', positiveInt('--budget'), 7)
  .option('--seeds <n>', 'seeds per run (initialization and data)', positiveInt('--seeds'), 1)
  .option('--steps <n>', "override every suite entry's steps", positiveInt('--steps'))
  .option('--workers <n>', 'worker threads (default: cores, at most 2)', positiveInt('--workers'))
  .option('--out <dir>', 'output folder (default bench-results/<suite>); finished runs there are kept and reused')
  .addOption(backendOption)
  .action(
    async (o: {
      suite: string;
      optimizers?: string[];
      budget: number;
      seeds: number;
      steps?: number;
      workers?: number;
      out?: string;
      backend?: ReturnType<typeof parseBackendName>;
    }) => {
      await benchCommand(o);
    },
  );

program
  .command('eval')
  .description('one task: a learned optimizer (one trial) against tuned Adam, as a table and a terminal chart')
  .argument('<checkpoint>', 'a .lopt file or a shipped checkpoint name')
  .requiredOption('--task <name>', 'a task name, e.g. mlp-mnist8-w64-d2')
  .option('--steps <n>', 'training steps', positiveInt('--steps'), 500)
  .option('--seeds <n>', 'seeds', positiveInt('--seeds'), 1)
  .option('--budget <n>', "learning rates in Adam's grid", positiveInt('--budget'), 7)
  .option('--workers <n>', 'worker threads', positiveInt('--workers'))
  .option('--out <dir>', 'keep the runs and results here (default: a temp folder)')
  .addOption(backendOption)
  .action(
    async (
      checkpoint: string,
      o: { task: string; steps: number; seeds: number; budget: number; workers?: number; out?: string; backend?: ReturnType<typeof parseBackendName> },
    ) => {
      await evalCommand({ checkpoint, ...o });
    },
  );

program
  .command('select')
  .description(
    "model selection: candidate checkpoints (files or folders, e.g. a continuation's .snapshots/) one trial each on a meta-validation suite beside tuned Adam",
  )
  .argument('<candidates...>', '.lopt files or folders of them')
  .option('--suite <name|file>', 'the meta-validation suite (not the generalization suite)', 'meta-validation')
  .option('--seeds <n>', 'seeds', positiveInt('--seeds'), 1)
  .option('--budget <n>', "learning rates in Adam's grid", positiveInt('--budget'), 7)
  .option('--workers <n>', 'worker threads', positiveInt('--workers'))
  .option('--out <dir>', 'keep the runs and results here (default bench-results/select-<suite>)')
  .addOption(backendOption)
  .action(
    async (
      candidates: string[],
      o: { suite: string; seeds: number; budget: number; workers?: number; out?: string; backend?: ReturnType<typeof parseBackendName> },
    ) => {
      await selectCommand({ candidates, ...o });
    },
  );

interface CardRunFlags {
  run?: string;
  recipe?: string;
  continuation?: string;
  theta?: string;
  stoppedEarly?: boolean;
  selection?: string;
}

/** One run of `lopt card` (the main one, or the twin from its --twin-* flags) as writeModelCard takes it. */
function cardRun(name: string, f: CardRunFlags): CardRun {
  return { name, runDir: f.run, recipe: f.recipe, continuation: f.continuation, theta: f.theta, stoppedEarly: f.stoppedEarly, selectionDir: f.selection };
}

program
  .command('card')
  .description(
    "ship a meta-training run: its theta as <out>/<name>.lopt and a model card <name>.md built from the run's files, its model selection and a bench",
  )
  .requiredOption('--name <name>', 'shipped name, e.g. mulo-mnist')
  .option('--run <runDir>', 'the meta-training run folder (or give --continuation with --recipe)')
  .option('--recipe <file>', 'the recipe of a run shipped from its continuation file alone (no run folder)')
  .option('--continuation <file>', "the run's continuation file, when it was continued over machines (its history and segments go in the card)")
  .option('--theta <file>', "ship this theta (e.g. the snapshot lopt select chose) instead of the run's final one")
  .option('--stopped-early', "the run was stopped before its recipe's outer steps; the card says so")
  .option('--selection <dir>', 'a lopt select output folder: its table goes in the card, and --theta must be the candidate it chose')
  .option('--twin-name <name>', "the SP twin's shipped name")
  .option('--twin <runDir>', "the SP twin's run folder")
  .option('--twin-recipe <file>', "the SP twin's recipe (with --twin-continuation, no run folder)")
  .option('--twin-continuation <file>', "the SP twin's continuation file")
  .option('--twin-theta <file>', "the SP twin's theta to ship")
  .option('--twin-stopped-early', 'the SP twin was stopped early')
  .option('--twin-selection <dir>', "the SP twin's lopt select output folder")
  .option('--bench <dir>', 'a lopt bench output folder whose results include lopt:<name>')
  .option('--notes <file>', "a markdown file of the authors' notes (what was measured beyond the tables, the next lever)")
  .option('--out <dir>', "where to write (default: the package's checkpoints/ folder)")
  .action(
    async (
      o: CardRunFlags & {
        name: string;
        twinName?: string;
        twin?: string;
        twinRecipe?: string;
        twinContinuation?: string;
        twinTheta?: string;
        twinStoppedEarly?: boolean;
        twinSelection?: string;
        bench?: string;
        notes?: string;
        out?: string;
      },
    ) => {
      const twinFlags: CardRunFlags = {
        run: o.twin,
        recipe: o.twinRecipe,
        continuation: o.twinContinuation,
        theta: o.twinTheta,
        stoppedEarly: o.twinStoppedEarly,
        selection: o.twinSelection,
      };
      if (o.twinName === undefined && Object.values(twinFlags).some((v) => v !== undefined)) throw new Error('card: the --twin-* options need --twin-name');
      if (o.twinName !== undefined && o.twin === undefined && o.twinContinuation === undefined)
        throw new Error("card: --twin-name needs the twin's run folder (--twin) or continuation file (--twin-continuation)");
      const { checkpoint } = await writeModelCard({
        ...cardRun(o.name, o),
        outDir: o.out ?? shippedCheckpointDir(),
        twin: o.twinName !== undefined ? cardRun(o.twinName, twinFlags) : undefined,
        benchDir: o.bench,
        notes: o.notes,
      });
      console.log(`wrote ${checkpoint} and its card`);
    },
  );

program
  .command('convert')
  .description("rewrite a learned optimizer's file in lopt's format: a released VeLO params file (Flax msgpack, with its config.gin when beside it) → .lopt")
  .argument('<file>', 'a released VeLO params file (or a .lopt)')
  .requiredOption('--out <file>', 'the .lopt file to write')
  .option('--force', 'replace --out if it exists')
  .action(async (file: string, o: { out: string; force?: boolean }) => {
    console.log(await convertCommand({ file, ...o }));
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  // Every error that ends a command reaches the terminal here, escaped whatever input it echoes.
  const message = printableMessage((e as Error).message);
  console.error(message.startsWith('lopt:') ? message : `lopt: ${message}`);
  process.exitCode = 1;
});
