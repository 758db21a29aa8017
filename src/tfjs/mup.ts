// μP for tfjs-layers models, so μLO runs in model.fit on the parametrization it was meta-trained
// for (Tensor Programs V as μLO applies it; the same rules as the μP tasks in tasks/mlp.ts):
// hidden weights N(0, 1/fan_in) truncated, hidden biases N(0, 1), a zero-initialized readout whose
// whole output is multiplied by 1/fan_in, and per-tensor update scales 1/fan_in for
// hidden-to-hidden matrices (1 for input weights, the readout and biases).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { MupScale } from '../optim/transforms/scaleByMup.js';

interface MupReadoutArgs {
  units: number;
  /** 'softmax' for categoricalCrossentropy, 'linear' for logits. */
  activation?: 'softmax' | 'linear';
  name?: string;
}

/** A dense readout under μP: zero-initialized, its output (bias included) multiplied by 1/fan_in. */
export class MupReadout extends tfl.layers.Layer {
  static readonly className = 'lopt.MupReadout';
  readonly units: number;
  readonly outputActivation: 'softmax' | 'linear';
  private kernel: tfl.LayerVariable | null = null;
  private bias: tfl.LayerVariable | null = null;

  constructor(args: MupReadoutArgs) {
    super(args.name ? { name: args.name } : {});
    if (!Number.isInteger(args.units) || args.units <= 0) throw new Error(`MupReadout: units must be a positive integer; got ${String(args.units)}`);
    const activation = args.activation ?? 'softmax';
    if (activation !== 'softmax' && activation !== 'linear')
      throw new Error(`MupReadout: activation must be 'softmax' or 'linear'; got '${String(activation)}'`);
    this.units = args.units;
    this.outputActivation = activation;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const fanIn = shape.at(-1);
    if (typeof fanIn !== 'number') throw new Error('MupReadout: the last input dimension must be known');
    this.kernel = this.addWeight('kernel', [fanIn, this.units], 'float32', tfl.initializers.zeros());
    this.bias = this.addWeight('bias', [this.units], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [...shape.slice(0, -1), this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const kernel = this.kernel!.read();
      const z = tf.mul(tf.add(tf.matMul(x, kernel), this.bias!.read()), 1 / kernel.shape[0]!);
      return this.outputActivation === 'softmax' ? tf.softmax(z) : z;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units, activation: this.outputActivation };
  }
}
tf.serialization.registerClass(MupReadout);

export interface MupMlpOptions {
  /** Input features (flattened). */
  inputs: number;
  /** Widths of the hidden layers, e.g. [256, 256]. */
  hidden: number[];
  outputs: number;
  activation?: 'relu' | 'tanh';
  /** 'softmax' (default) for categoricalCrossentropy, 'linear' for logits. */
  outputActivation?: 'softmax' | 'linear';
  /** Seed of the initialization. */
  seed?: number;
}

/** A μP MLP as a tfjs-layers model (dense hidden layers and a MupReadout). */
export function mupMlp(o: MupMlpOptions): tfl.Sequential {
  const positive = (n: number) => Number.isInteger(n) && n > 0;
  if (!positive(o.inputs)) throw new Error(`mupMlp: inputs must be a positive integer; got ${String(o.inputs)}`);
  if (!positive(o.outputs)) throw new Error(`mupMlp: outputs must be a positive integer; got ${String(o.outputs)}`);
  if (!Array.isArray(o.hidden) || o.hidden.length === 0 || !o.hidden.every(positive)) {
    throw new Error(`mupMlp: hidden must be a non-empty list of positive integer widths; got ${JSON.stringify(o.hidden)}`);
  }
  const activation = o.activation ?? 'relu';
  if (activation !== 'relu' && activation !== 'tanh') throw new Error(`mupMlp: activation must be 'relu' or 'tanh'; got '${String(activation)}'`);
  const seed = o.seed ?? 0;
  const model = tfl.sequential();
  let fanIn = o.inputs;
  o.hidden.forEach((width, i) => {
    model.add(
      tfl.layers.dense({
        units: width,
        activation,
        ...(i === 0 ? { inputShape: [o.inputs] } : {}),
        kernelInitializer: tfl.initializers.truncatedNormal({ stddev: 1 / Math.sqrt(fanIn), seed: seed * 1000 + 2 * i }),
        biasInitializer: tfl.initializers.randomNormal({ stddev: 1, seed: seed * 1000 + 2 * i + 1 }),
      }),
    );
    fanIn = width;
  });
  model.add(new MupReadout({ units: o.outputs, activation: o.outputActivation ?? 'softmax' }));
  return model;
}

/**
 * The μP update scale of each of a model's trainable weights, by variable name, for a learned
 * optimizer's `mupScale` option: 1/fan_in for the kernels of dense layers that follow another
 * dense layer (hidden-to-hidden), 1 for the first layer's kernel, the readout and every bias.
 * Supports sequential models of dense layers ending in a MupReadout.
 */
export function mupScaleFor(model: tfl.LayersModel): MupScale {
  const scales: Record<string, number> = {};
  let seenDense = false;
  for (const layer of model.layers) {
    const weights = layer.trainableWeights;
    if (weights.length === 0) continue;
    const isReadout = layer instanceof MupReadout;
    if (!isReadout && layer.getClassName() !== 'Dense') {
      throw new Error(`mupScaleFor: layer '${layer.name}' is a ${layer.getClassName()}; only Dense layers and a MupReadout are supported`);
    }
    for (const w of weights) {
      const isKernel = w.shape.length === 2;
      scales[w.name] = isKernel && !isReadout && seenDense ? 1 / w.shape[0]! : 1;
    }
    if (!isReadout) seenDense = true;
  }
  return scales;
}
