// The dashboard's sections, one small component each. They only display what they are given; the
// state and the keyboard live in dashboard.tsx.

import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import type { CheckpointEvent, OuterStepEvent, RunEndEvent, RunStartEvent, WorkerStatus } from '../../meta/events.js';
import {
  formatAgo,
  formatDuration,
  formatEta,
  formatLearningRate,
  formatLoss,
  formatPercent,
  formatRate,
  formatScalar,
  progressBar,
  workerTotals,
} from './format.js';

/** Width of the label column, so that values line up. */
const LABEL_WIDTH = 13;

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Box>
      <Box width={LABEL_WIDTH} flexShrink={0}>
        <Text dimColor>{label}</Text>
      </Box>
      <Box flexDirection="column" flexGrow={1}>
        {children}
      </Box>
    </Box>
  );
}

export function RunHeader({ run }: { run: RunStartEvent | null }) {
  if (run === null) return <Text bold>lopt meta-train · waiting for the run to start…</Text>;
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>lopt meta-train</Text>
        {` · recipe ${run.recipeName} · ${run.arch} (${run.thetaSize.toLocaleString('en-US')} meta-params)`}
      </Text>
      <Row label="run dir">
        <Text>{run.runDir}</Text>
      </Row>
      {run.resumedFrom !== null && (
        <Row label="resumed from">
          <Text>{`${run.resumedFrom} (step ${run.startStep})`}</Text>
        </Row>
      )}
      <Row label="backend">
        <Text>
          {run.queue !== undefined
            ? `${run.backend} · units run on lopt workers via ${run.queue}`
            : `${run.backend} · ${run.workers} worker${run.workers === 1 ? '' : 's'}`}
        </Text>
      </Row>
    </Box>
  );
}

export interface ProgressProps {
  run: RunStartEvent | null;
  lastStep: OuterStepEvent | null;
  elapsedSeconds: number;
  barWidth: number;
}

export function Progress({ run, lastStep, elapsedSeconds, barWidth }: ProgressProps) {
  const done = lastStep?.step ?? run?.startStep ?? 0;
  const total = lastStep?.totalSteps ?? run?.totalSteps ?? 0;
  return (
    <Text>
      <Text bold>{`step ${done}/${total} `}</Text>
      <Text color="green">{progressBar(done, total, barWidth)}</Text>
      {` ${formatPercent(done, total)}  eta ${formatEta(lastStep?.etaSeconds ?? null)}  elapsed ${formatDuration(elapsedSeconds)}`}
    </Text>
  );
}

/** The per-step figures: inner losses, throughput, σ, learning rate, meta-gradient norm. */
export function StepStats({ run, lastStep }: { run: RunStartEvent | null; lastStep: OuterStepEvent | null }) {
  if (lastStep === null) return null;
  const labels = run?.estimators ?? [];
  const labelWidth = Math.max(0, ...labels.map((l) => l.length));
  const perWorker = lastStep.innerStepsPerSecondPerWorker;
  return (
    <Box flexDirection="column">
      <Row label="inner loss">
        {lastStep.innerLoss.map((loss, i) => (
          <Text key={i} wrap="truncate-middle">
            {`${(labels[i] ?? `estimator ${i + 1}`).padEnd(labelWidth)}  ${formatLoss(loss)}`}
          </Text>
        ))}
      </Row>
      <Row label="throughput">
        <Text>{`${formatRate(lastStep.innerStepsPerSecond)} inner steps/s (population) · ${formatDuration(lastStep.seconds)}/outer step`}</Text>
        {perWorker.length > 1 && <Text>{`per worker: ${perWorker.map(formatRate).join(' ')}`}</Text>}
      </Row>
      <Row label="outer">
        <Text>{`σ ${formatScalar(lastStep.sigma)} · lr ${formatLearningRate(lastStep.outerLr)} · ‖meta-grad‖ ${formatScalar(lastStep.metaGradNorm)}`}</Text>
      </Row>
    </Box>
  );
}

/** How many workers the table lists; the total row still counts them all. */
export const WORKERS_SHOWN = 12;

/** With a queue: the connected `lopt worker`s, one row each, and what they add up to. */
export function Workers({ run, workers }: { run: RunStartEvent | null; workers: WorkerStatus[] | null }) {
  if (run?.queue === undefined) return null;
  let body: ReactNode;
  if (workers === null) body = <Text dimColor>waiting for the queue's first report…</Text>;
  else if (workers.length === 0) body = <Text color="yellow">{`no workers connected — start one with: lopt worker --queue ${run.queue}`}</Text>;
  else body = <WorkerTable workers={workers} />;
  return <Row label="workers">{body}</Row>;
}

function WorkerTable({ workers }: { workers: WorkerStatus[] }) {
  const shown = workers.slice(0, WORKERS_SHOWN);
  const total = workerTotals(workers);
  const totalLabel = `total (${total.workers} worker${total.workers === 1 ? '' : 's'})`;
  const idWidth = Math.max(totalLabel.length, ...shown.map((w) => w.id.length));
  const line = (id: string, threads: string, units: string, seen: string, rate: string) =>
    `${id.padEnd(idWidth)}  ${threads.padStart(7)}  ${units.padStart(6)}  ${seen.padStart(10)}  ${rate.padStart(13)}`;
  return (
    <>
      <Text dimColor wrap="truncate-end">
        {line('id', 'threads', 'units', 'last seen', 'inner steps/s')}
      </Text>
      {shown.map((w, i) => (
        <Text key={i} wrap="truncate-end">
          {line(w.id, String(w.threads), String(w.unitsDone), formatAgo(w.lastSeenSeconds), formatRate(w.innerStepsPerSecond))}
        </Text>
      ))}
      {workers.length > shown.length && <Text dimColor>{`… and ${workers.length - shown.length} more`}</Text>}
      <Text bold wrap="truncate-end">
        {line(totalLabel, String(total.threads), '', '', formatRate(total.innerStepsPerSecond))}
      </Text>
    </>
  );
}

const CHECKPOINT_REASONS: Record<CheckpointEvent['reason'], string> = {
  steps: 'every N steps',
  minutes: 'every M minutes',
  stop: 'on stop',
  final: 'final',
};

export function LastCheckpoint({ checkpoint }: { checkpoint: CheckpointEvent | null }) {
  return (
    <Row label="checkpoint">
      {checkpoint === null ? (
        <Text dimColor>none yet</Text>
      ) : (
        <Text>{`step ${checkpoint.step} · ${checkpoint.path} (${CHECKPOINT_REASONS[checkpoint.reason]})`}</Text>
      )}
    </Row>
  );
}

export function Warnings({ warnings, count }: { warnings: string[]; count: number }) {
  if (count === 0) return null;
  const older = count - warnings.length;
  return (
    <Box flexDirection="column">
      <Text color="yellow">{`warnings (${count}${older > 0 ? `, last ${warnings.length} shown` : ''})`}</Text>
      {warnings.map((message, i) => (
        <Text key={i} color="yellow" wrap="truncate-end">{`  ⚠ ${message}`}</Text>
      ))}
    </Box>
  );
}

export interface FooterProps {
  end: RunEndEvent | null;
  stopRequested: boolean;
  /** Whether keys are read at all (stdin is a terminal); otherwise the key hint would lie. */
  keysEnabled: boolean;
}

export function Footer({ end, stopRequested, keysEnabled }: FooterProps) {
  if (end !== null) return <RunEndStatus end={end} />;
  if (stopRequested) return <Text color="yellow">stopping after this step… (a checkpoint is written; Ctrl+C again quits now)</Text>;
  if (!keysEnabled) return null;
  return <Text dimColor>press q to stop after this step (a checkpoint is written)</Text>;
}

function RunEndStatus({ end }: { end: RunEndEvent }) {
  const checkpoint = end.checkpoint === null ? 'no checkpoint written' : `checkpoint ${end.checkpoint}`;
  switch (end.status) {
    case 'done':
      return <Text color="green" bold>{`✔ done at step ${end.step} · ${checkpoint}`}</Text>;
    case 'stopped':
      return <Text color="yellow" bold>{`■ stopped at step ${end.step} · ${checkpoint}`}</Text>;
    case 'failed':
      return (
        <Box flexDirection="column">
          <Text color="red" bold>{`✖ failed at step ${end.step} · ${checkpoint}`}</Text>
          {end.error !== undefined && <Text color="red">{end.error}</Text>}
        </Box>
      );
  }
}
