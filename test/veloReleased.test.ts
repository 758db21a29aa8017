// Released VeLO files (learned_optimization's Flax msgpack `params`, written here by the independent
// Python writer in test/fixtures/velo): loadLearnedOptimizer, lopt convert, model.fit, and the
// update against the float64 HyperV2 reference at the released sizes.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { loadLearnedOptimizer } from '../src/lopt/io.js';
import { refInit, refUpdate, type F64 } from './helpers/veloReference.js';
import { VELO_FIXTURE_DIR, runVeloWriter, veloLeafSpecs, veloLeafValues } from './helpers/veloFixture.js';

const dir = mkdtempSync(join(tmpdir(), 'lopt-velo-released-'));
const CLI = join(process.cwd(), 'dist/src/cli/lopt.js');

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every theta tensor equals the writer's formula. */
async function expectFormulaTheta(path: string, H: number, K: number, F: number): Promise<void> {
  const lo = await loadLearnedOptimizer(path);
  try {
    expect(lo.learnedOptimizer.arch).toBe('velo');
    expect(lo.learnedOptimizer.config).toMatchObject({ lstmHiddenSize: H, paramInits: K, ffHiddenSize: F, useBuggedLossFeatures: false });
    veloLeafSpecs(H, K, F).forEach((spec, k) => {
      const t = lo.theta[spec.path.join('/')]!;
      expect(t.shape).toEqual(spec.shape);
      expect(Buffer.from(new Float32Array(t.dataSync()).buffer).equals(Buffer.from(veloLeafValues(k, spec).buffer))).toBe(true);
    });
  } finally {
    lo.dispose();
  }
}

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('released VeLO files', () => {
  it('load: the ParameterCheckpoint with config.gin, the old tuple with a legacy LSTMState, and a chunked file', async () => {
    await expectFormulaTheta(join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4/params'), 8, 4, 4);
    await expectFormulaTheta(join(VELO_FIXTURE_DIR, 'tuple_legacy_h8_k4_f4/params'), 8, 4, 4);
    await expectFormulaTheta(join(VELO_FIXTURE_DIR, 'chunked64_h8_k4_f4/params'), 8, 4, 4);
  });

  it('config.gin decides the flags and refuses HyperV2 settings lopt does not implement', async () => {
    const base = join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4');
    const gin = readFileSync(join(base, 'config.gin'), 'utf8');
    const put = (name: string, text: string) => {
      const d = join(dir, name);
      rmSync(d, { recursive: true, force: true });
      spawnSync('mkdir', ['-p', d]);
      copyFileSync(join(base, 'params'), join(d, 'params'));
      writeFileSync(join(d, 'config.gin'), text);
      return join(d, 'params');
    };
    const bugged = await loadLearnedOptimizer(
      put('bugged', gin.replace('HyperV2.use_bugged_loss_features = False', 'HyperV2.use_bugged_loss_features = True')),
    );
    expect(bugged.learnedOptimizer.config['useBuggedLossFeatures']).toBe(true);
    bugged.dispose();
    await expect(loadLearnedOptimizer(put('layers', gin.replace('HyperV2.ff_hidden_layers = 2', 'HyperV2.ff_hidden_layers = 3')))).rejects.toThrow(
      /HyperV2\.ff_hidden_layers.*binds 3; lopt's VeLO implements HyperV2 with ff_hidden_layers = 2 only/,
    );
    await expect(loadLearnedOptimizer(put('size', gin.replace('HyperV2.lstm_hidden_size = 8', 'HyperV2.lstm_hidden_size = 16')))).rejects.toThrow(
      /has shape \[1,8\]; VeLO with LSTM 16/,
    );
    await expect(loadLearnedOptimizer(put('other', gin.replace('run_train.lopt = @HyperV2()', 'run_train.lopt = @AdafacMLPLOpt()')))).rejects.toThrow(
      /run_train\.lopt.*HyperV2 \(VeLO\) files only/,
    );
  });

  it('lopt convert writes a .lopt with the same theta; refuses to overwrite and explains a file that is neither format', async () => {
    const out = join(dir, 'velo-small.lopt');
    const r = cli('convert', join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4/params'), '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /wrote .*velo-small\.lopt: velo .*1,985 meta-parameters \(released VeLO params \(Flax msgpack, checkpoint layout, gen_id velo_fixture, step 1234\)/,
    );
    await expectFormulaTheta(out, 8, 4, 4);
    const again = cli('convert', join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4/params'), '--out', out);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/exists; choose another --out or pass --force/);
    const junk = join(dir, 'junk');
    writeFileSync(junk, Buffer.from([0x82, 0xa6, 0x70, 0x61, 0x72, 0x61, 0x6d, 0x73, 0x90, 0x1b]));
    const bad = cli('convert', junk, '--out', join(dir, 'junk.lopt'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/neither a lopt checkpoint \(.*\) nor a released VeLO params file \(.*\)/);
    // A truncated released file is refused with the Flax reader's reason.
    const cut = join(dir, 'cut');
    writeFileSync(cut, readFileSync(join(VELO_FIXTURE_DIR, 'checkpoint_h8_k4_f4/params')).subarray(0, 5000));
    await expect(loadLearnedOptimizer(cut)).rejects.toThrow(/released VeLO params file \(.*(truncated|ends|end of)/i);
  });

  it('at the released sizes: loads, trains a tfjs-layers model in model.fit, and its step equals the float64 reference', async () => {
    const path = join(dir, 'released', 'params');
    spawnSync('mkdir', ['-p', join(dir, 'released')]);
    runVeloWriter(['--out', path, '--gen-id', 'velo', '--step', '5620']);
    const lo = await loadLearnedOptimizer(path);
    expect(Object.values(lo.theta).reduce((n, t) => n + t.size, 0)).toBe(2_320_385);
    expect(lo.learnedOptimizer.config).toMatchObject({ lstmHiddenSize: 512, paramInits: 256 });

    // One Dense layer, the whole batch in one step: model.fit's step is exactly one VeLO update.
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4], kernelInitializer: 'glorotUniform', biasInitializer: 'ones' })] });
    const x = tf.tensor2d(
      Array.from({ length: 32 }, (_, i) => Math.sin(i * 0.7)),
      [8, 4],
    );
    const y = tf.tensor2d(
      Array.from({ length: 24 }, (_, i) => Math.cos(i * 0.3)),
      [8, 3],
    );
    model.compile({ optimizer: lo.asTfjsOptimizer({ totalSteps: 100 }), loss: 'meanSquaredError' });
    const [kernel, bias] = model.getWeights();
    const before = {
      kernel: { shape: kernel!.shape.slice(), data: Float64Array.from(kernel!.dataSync()) },
      bias: { shape: bias!.shape.slice(), data: Float64Array.from(bias!.dataSync()) },
    };
    // The loss and gradients tfjs-layers will compute for this step.
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(tf.sub(model.predict(x) as tf.Tensor, y))) as tf.Scalar,
      model.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const gradList = Object.values(grads);
    const refGrads: Record<string, F64> = {
      kernel: { shape: before.kernel.shape, data: Float64Array.from(gradList[0]!.dataSync()) },
      bias: { shape: before.bias.shape, data: Float64Array.from(gradList[1]!.dataSync()) },
    };
    const loss = value.dataSync()[0]!;
    tf.dispose([value, ...gradList]);
    const thetaRef: Record<string, F64> = {};
    for (const [k, t] of Object.entries(lo.theta)) thetaRef[k] = { shape: t.shape.slice(), data: Float64Array.from(t.dataSync()) };
    const want = refUpdate(thetaRef, refInit(thetaRef, before, 100), before, refGrads, loss);

    const history = await model.fit(x, y, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
    expect(history.history['loss']![0]).toBeCloseTo(loss, 5);
    const [k1, b1] = model.getWeights();
    for (const [got, name, was] of [
      [k1!, 'kernel', before.kernel],
      [b1!, 'bias', before.bias],
    ] as const) {
      const g = got.dataSync();
      const w = want.newParams[name]!.data;
      let scale = 0;
      for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]! - was.data[i]!));
      expect(scale).toBeGreaterThan(0);
      for (let i = 0; i < w.length; i++) expect(Math.abs(g[i]! - was.data[i]! - (w[i]! - was.data[i]!))).toBeLessThanOrEqual(3e-3 * scale + 1e-7);
    }
    // More epochs run and stay finite.
    await model.fit(x, y, { batchSize: 4, epochs: 3, shuffle: false, verbose: 0 });
    expect(model.getWeights().every((w) => Array.from(w.dataSync()).every(Number.isFinite))).toBe(true);
    tf.dispose([x, y]);
    model.dispose();
    lo.dispose();
  });
});
