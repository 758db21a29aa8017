/**
 * The VeLO parameter files that test/fixtures/velo/write_flax_velo.py writes, recomputed here
 * independently (no shared code, no shared RNG): the leaf list in file order and the value
 * formula documented in that script.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const VELO_FIXTURE_DIR = fileURLToPath(new URL('../fixtures/velo/', import.meta.url));
export const VELO_WRITER = `${VELO_FIXTURE_DIR}write_flax_velo.py`;

/** Input widths of HyperV2's w0__0 … w0__13 (one per per-parameter feature group). */
export const VELO_W0_INPUTS = [1, 1, 1, 3, 1, 3, 1, 3, 1, 3, 3, 3, 3, 3] as const;

export interface VeloLeafSpec {
  path: string[];
  shape: number[];
}

/** Every leaf of VeLO's theta in file order (sorted dict keys; LSTMState fields as hidden, cell): leaf k of the formula. */
export function veloLeafSpecs(H: number, K: number, F: number): VeloLeafSpec[] {
  const w0 = VELO_W0_INPUTS.map((c, i) => ({ name: `w0__${i}`, shape: [K, c, F] })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const mod = [
    { name: 'b0', shape: [K, F] },
    { name: 'b1', shape: [K, F] },
    { name: 'b2', shape: [K, 3] },
    ...w0,
    { name: 'w1', shape: [K, F, F] },
    { name: 'w2', shape: [K, F, 3] },
  ];
  const specs: VeloLeafSpec[] = mod.map(({ name, shape }) => ({ path: ['ff_mod_stack', '~', name], shape }));
  specs.push({ path: ['lstm_init_state', 'hidden'], shape: [1, H] }, { path: ['lstm_init_state', 'cell'], shape: [1, H] });
  const rnn: [string, number, number][] = [
    ['linear', 30, H],
    ['linear_1', 30, H],
    ['linear_2', 30, H],
    ['rnn/~/linear', 2 * H, 4 * H],
    ['rnn_to_controls', H, K],
    ['step_size', H, 1],
  ];
  for (const [module, fanIn, out] of rnn) {
    specs.push({ path: ['rnn_params', module, 'b'], shape: [out] }, { path: ['rnn_params', module, 'w'], shape: [fanIn, out] });
  }
  return specs;
}

/**
 * The formula: element i of leaf k is float32(((i·7919 + k·104729) mod 2001 − 1000) / 1000 · scale),
 * in float64 then rounded once to float32, with scale = 1/√shape[-2] for a leaf named w…, else 0.1.
 */
export function veloLeafValues(k: number, spec: VeloLeafSpec): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const name = spec.path[spec.path.length - 1] as string;
  const scale = name.startsWith('w') ? 1 / Math.sqrt(spec.shape[spec.shape.length - 2] as number) : 0.1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((((i * 7919 + k * 104729) % 2001) - 1000) / 1000) * scale;
  return out;
}

/**
 * A python3 that has msgpack and numpy: $LOPT_PYTHON, `python3` on PATH, or Debian's
 * /usr/bin/python3 (a pyenv or venv python3 first on PATH may lack Debian's packages). Throws,
 * saying what to install, when there is none: these tests must fail rather than skip.
 */
export function pythonWithMsgpack(tryThese: (string | undefined)[] = [process.env.LOPT_PYTHON, 'python3', '/usr/bin/python3']): string {
  const candidates = tryThese.filter((c): c is string => c !== undefined && c !== '');
  const tried: string[] = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import msgpack, numpy'], { encoding: 'utf8', timeout: 30_000 });
    if (probe.status === 0) return python;
    tried.push(`${python}: ${probe.error?.message ?? (probe.stderr.trim().split('\n').pop() || `exit ${probe.status}`)}`);
  }
  throw new Error(
    `the VeLO fixture writer needs python3 with msgpack and numpy; install them with ` +
      `\`apt-get install -y python3 python3-msgpack python3-numpy\` (tried ${tried.join('; ')})`,
  );
}

/** Runs write_flax_velo.py with these arguments; returns its stdout. */
export function runVeloWriter(args: string[]): string {
  const python = pythonWithMsgpack();
  const run = spawnSync(python, [VELO_WRITER, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (run.status !== 0) throw new Error(`write_flax_velo.py ${args.join(' ')} failed (${run.error?.message ?? `exit ${run.status}`}): ${run.stderr}`);
  return run.stdout;
}
