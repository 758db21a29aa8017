// The released VeLO weights (learned_optimization's `params` files: Flax msgpack of
// ParameterCheckpoint(theta, gen_id, step), or the older tuple (theta, "", 0)) as a lopt checkpoint,
// with the HyperV2 bindings of the config.gin beside the file when there is one.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CHECKPOINT_VERSION, validateCheckpoint } from '../../checkpoint/index.js';
import { CheckpointError } from '../../checkpoint/error.js';
import type { Checkpoint } from '../../checkpoint/format.js';
import { flaxArrayLeaves, loadFlaxMsgpackFile, readParameterCheckpoint, type FlaxArray } from '../../checkpoint/flax/flaxMsgpack.js';
import { ginParam, readGinBindings, type GinValue } from '../../checkpoint/flax/gin.js';
import { readInputText } from '../../schema/inputFile.js';
import { printable } from '../../text/printable.js';
import { RELEASED_VELO_CONFIG, veloThetaShapes, type ResolvedVeloConfig } from './config.js';

/** HyperV2 bindings lopt maps onto its config. */
const MAPPED: Record<string, keyof ResolvedVeloConfig> = {
  lstm_hidden_size: 'lstmHiddenSize',
  param_inits: 'paramInits',
  ff_hidden_size: 'ffHiddenSize',
  use_bugged_loss_features: 'useBuggedLossFeatures',
  use_bugged_next_lstm_state: 'useBuggedNextLstmState',
};

/** HyperV2 arguments lopt implements only at their default: a file binding another value is refused. */
const FIXED: Record<string, GinValue> = {
  ff_hidden_layers: 2,
  initial_momentum_decays: [0.9, 0.99, 0.999],
  initial_rms_decays: [0.999],
  initial_adafactor_decays: [0.9, 0.99, 0.999],
  mix_layers: true,
  exp_mult: 0.001,
  step_mult: 0.001,
  validation_mode: false,
  with_validation_feature_dim: false,
  with_g: true,
  with_m: true,
  with_m_feat: true,
  with_rms: true,
  with_rms_feat: true,
  with_rms_norm_g: true,
  with_rsqrt_rms: true,
  with_p: true,
  with_fac_norm_g: true,
  with_fac_rms: true,
  with_fac_rsqrt: true,
  with_grad_clip_feat: true,
  with_fac_mom_mult: true,
  with_rms_only_norm_g: true,
  adafactor_accumulator: true,
  param_scale_mult: true,
  precondition_output: false,
  rnn_state_decay: 0,
  constant_loss: false,
  clip_param_scale_amount: null,
};

const same = (a: GinValue, b: GinValue): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The config the gin file binds, every other key at the released value; unsupported bindings refused. */
function configFromGin(ginPath: string): { config: ResolvedVeloConfig; note: string } {
  const text = readInputText(ginPath, 'config.gin', 1024 * 1024);
  const { bindings } = readGinBindings(text, ginPath);
  const lopt = ginParam(bindings, 'run_train', 'lopt', ginPath);
  if (lopt !== undefined) {
    const name = typeof lopt === 'object' && lopt !== null && 'reference' in lopt ? lopt.reference : null;
    if (name === null || !(name === 'HyperV2' || name.endsWith('.HyperV2') || name.endsWith('/HyperV2'))) {
      throw new CheckpointError(ginPath, 'run_train.lopt', `binds ${printable(JSON.stringify(lopt), 80)}; lopt loads HyperV2 (VeLO) files only`);
    }
  }
  const config: ResolvedVeloConfig = { ...RELEASED_VELO_CONFIG };
  for (const [param, key] of Object.entries(MAPPED)) {
    const v = ginParam(bindings, 'HyperV2', param, ginPath);
    if (v === undefined) continue;
    const wantBoolean = typeof RELEASED_VELO_CONFIG[key] === 'boolean';
    if (wantBoolean ? typeof v !== 'boolean' : typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new CheckpointError(
        ginPath,
        `HyperV2.${param}`,
        `expected ${wantBoolean ? 'True or False' : 'a positive integer'}, found ${printable(JSON.stringify(v), 80)}`,
      );
    }
    (config as Record<string, number | boolean>)[key] = v as number | boolean;
  }
  for (const [param, fixed] of Object.entries(FIXED)) {
    const v = ginParam(bindings, 'HyperV2', param, ginPath);
    if (v !== undefined && !same(v, fixed)) {
      throw new CheckpointError(
        ginPath,
        `HyperV2.${param}`,
        `binds ${printable(JSON.stringify(v), 80)}; lopt's VeLO implements HyperV2 with ${param} = ${JSON.stringify(fixed)} only`,
      );
    }
  }
  return { config, note: `config.gin read` };
}

/** H, K and F from the theta's shapes (when no config.gin says them). */
function inferredConfig(leaves: Map<string, FlaxArray>, label: string): ResolvedVeloConfig {
  const dim = (name: string, axis: number): number => {
    const a = leaves.get(name);
    const d = a?.shape[axis];
    if (d === undefined)
      throw new CheckpointError(label, name, `missing (a VeLO params file holds it); found: ${printable([...leaves.keys()].join(', '), 400)}`);
    return d;
  };
  return {
    ...RELEASED_VELO_CONFIG,
    lstmHiddenSize: dim('lstm_init_state/hidden', 1),
    paramInits: dim('rnn_params/rnn_to_controls/w', 1),
    ffHiddenSize: dim('ff_mod_stack/~/b0', 1),
  };
}

/**
 * Reads a released VeLO `params` file (untrusted: bounded decoding, every name, shape, dtype and
 * value checked) into a `velo` checkpoint. Without a config.gin beside it, the sizes come from the
 * shapes and the flags are the released VeLO's (use_bugged_loss_features False).
 */
export async function readReleasedVelo(path: string): Promise<Checkpoint> {
  const tree = await loadFlaxMsgpackFile(path);
  const ckpt = readParameterCheckpoint(tree, path);
  const leaves = new Map(flaxArrayLeaves(ckpt.params).map(({ path: p, array }) => [p.join('/'), array]));
  const ginPath = join(dirname(path), 'config.gin');
  const { config, note } = existsSync(ginPath)
    ? configFromGin(ginPath)
    : { config: inferredConfig(leaves, path), note: 'no config.gin: sizes from the shapes, flags as released' };
  const shapes = veloThetaShapes(config);
  const names = Object.keys(shapes);
  const extra = [...leaves.keys()].filter((n) => !(n in shapes));
  if (extra.length > 0) throw new CheckpointError(path, extra[0], `is not a VeLO (HyperV2) meta-parameter; expected: ${names.join(', ')}`);
  const data = names.map((name) => {
    const a = leaves.get(name);
    if (a === undefined) throw new CheckpointError(path, name, 'missing (a VeLO params file holds it)');
    const want = shapes[name]!;
    if (a.shape.length !== want.length || a.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(
        path,
        name,
        `has shape [${a.shape.join(',')}]; VeLO with LSTM ${config.lstmHiddenSize}, ${config.paramInits} banks, MLP ${config.ffHiddenSize} needs [${want.join(',')}]`,
      );
    }
    if (a.dtype !== 'float32' && a.dtype !== 'float64') throw new CheckpointError(path, name, `has dtype ${a.dtype}; meta-parameters are float32`);
    return a.data instanceof Float32Array ? a.data : Float32Array.from(a.data);
  });
  const genId = ckpt.genId === '' ? '' : `, gen_id ${printable(ckpt.genId, 80)}`;
  return validateCheckpoint(
    {
      format: 'lopt',
      version: CHECKPOINT_VERSION,
      arch: 'velo',
      config: { ...config },
      theta: { names, shapes: names.map((n) => shapes[n]!), data },
      provenance: {
        createdAt: new Date().toISOString(),
        source: `released VeLO params (Flax msgpack, ${ckpt.layout} layout${genId}, step ${ckpt.step}) from ${printable(basename(path), 120)}; ${note}`,
        outerStep: ckpt.step,
      },
    },
    path,
  );
}
