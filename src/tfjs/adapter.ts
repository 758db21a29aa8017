import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState } from '../optim/optimizer.js';
import { createOptimizer } from '../optim/registry.js';
import { showValue } from '../schema/parseOptions.js';
import type { Params } from '../tree/params.js';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import { decodeState } from '../tree/stateCodec.js';
import { tidyTree } from '../tree/tidy.js';
import { disposeReplaced, disposeState, stateLeafPaths, stateLeaves, stateTensors, type StateTree } from '../tree/stateTree.js';

type Gradients = tf.NamedTensorMap | NamedTensor[];

/**
 * A lopt optimizer as a tf.Optimizer, for model.compile / model.fit. The state lives in tensors
 * kept across tidy scopes and is matched to the model's variables by position (tfjs renames
 * variables on reload); getWeights/setWeights carry the iteration counter first, then every state
 * leaf in a fixed order, so model.save(..., { includeOptimizer: true }) round-trips.
 * Loading builds it back by name (fromConfig, registered with tfjs below).
 */
export class TfjsOptimizer extends tf.Optimizer {
  static readonly className = 'lopt.Optimizer';

  private state: OptimizerState | null = null;
  /** The loss of the step being taken, while minimize() applies its gradients (VeLO reads it). */
  private stepLoss: tf.Scalar | null = null;
  /** State leaves restored by setWeights before the first step (the variables were not known yet). */
  private restored: tf.Tensor[] | null = null;

  constructor(readonly optimizer: Optimizer) {
    super();
    this.iterations_ = 0;
  }

  private get label(): string {
    return `${this.optimizer.name} (tfjs optimizer)`;
  }

  /**
   * tfjs-layers' model.fit calls minimize(lossFunction, true, variables): the loss it computes is
   * handed to the optimizer with the gradients, so optimizers that read the training loss (VeLO)
   * work in model.fit with nothing for the user to do.
   */
  override minimize(f: () => tf.Scalar, returnCost = false, varList?: tf.Variable[]): tf.Scalar | null {
    const { value, grads } = this.computeGradients(f, varList);
    this.stepLoss = value;
    try {
      this.applyGradients(varList != null ? varList.map((v) => ({ name: v.name, tensor: grads[v.name]! })) : grads);
    } finally {
      this.stepLoss = null;
      tf.dispose(grads);
    }
    if (returnCost) return value;
    value.dispose();
    return null;
  }

  /** Applies gradients; called directly (not through minimize), no loss reaches the optimizer. */
  override applyGradients(variableGradients: Gradients): void {
    const entries: [string, tf.Tensor][] = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const variables = entries.map(([name, g]) => {
      if (g == null) throw new Error(`${this.label}: gradient for variable '${name}' is null`);
      const v = tf.engine().registeredVariables[name];
      if (v === undefined) throw new Error(`${this.label}: no variable named '${name}' is registered`);
      return v;
    });
    if (this.state === null) {
      this.start(Object.fromEntries(entries.map(([name], i) => [name, variables[i]!])));
    }
    // Keyed by position: the i-th variable is the state's i-th parameter, whatever tfjs calls it now.
    const spec = this.state!.spec;
    if (entries.length !== spec.length) {
      throw new Error(
        `${this.label}: got gradients for ${entries.length} variables, but its state was built for ${spec.length} (${spec.map((p) => p.name).join(', ')})`,
      );
    }
    const grads: Params = {};
    const params: Params = {};
    spec.forEach((p, i) => {
      grads[p.name] = entries[i]![1];
      params[p.name] = variables[i]!;
    });

    const old = this.state!;
    const { updates, state } = this.optimizer.update(grads, old, params, this.stepLoss === null ? {} : { loss: this.stepLoss });
    tf.tidy(() => {
      spec.forEach((p, i) => variables[i]!.assign(tf.add(variables[i]!, updates[p.name]!)));
    });
    tf.dispose(Object.values(updates));
    for (const t of stateTensors(state.inner)) tf.keep(t);
    disposeReplaced(old.inner, state.inner);
    this.state = state;
    this.incrementIterations();
  }

  private start(params: Params): void {
    const fresh = tidyTree(() => this.optimizer.init(params));
    for (const t of stateTensors(fresh.inner)) tf.keep(t);
    this.state = fresh;
    if (this.restored !== null) {
      const restored = this.restored;
      this.restored = null;
      this.adopt(restored);
    }
  }

  /** Replaces the current state's leaves with `leaves` (this adapter's copies) after checking count and shapes. */
  private adopt(leaves: tf.Tensor[]): void {
    const state = this.state!;
    const current = stateLeaves(state.inner);
    let inner: StateTree;
    try {
      if (leaves.length !== current.length) {
        throw new Error(
          `${this.label}: setWeights got ${leaves.length} state tensors after the iteration counter, but this optimizer's state for these variables has ${current.length}`,
        );
      }
      inner = decodeState(state.inner, leaves, `${this.label}: setWeights`);
    } catch (e) {
      tf.dispose(leaves);
      throw e;
    }
    disposeReplaced(state.inner, inner);
    // Number leaves were read out of their scalar tensors: those copies are not part of the state.
    const held = new Set(stateTensors(inner));
    tf.dispose(leaves.filter((t) => !held.has(t)));
    this.state = { spec: state.spec, inner };
  }

  /** Refused: a lopt optimizer's hyperparameters are fixed (tfjs's own setter is silently ignored). */
  setLearningRate(_lr: number): never {
    throw new Error(
      `${this.label}: hyperparameters are fixed at construction; pass a schedule as learningRate ` +
        `(warmupCosine, …) or build a new optimizer with ${this.optimizer.name}({ learningRate })`,
    );
  }

  /** Refused, for the same reason as setLearningRate. */
  setMomentum(_momentum: number): never {
    throw new Error(`${this.label}: hyperparameters are fixed at construction; build a new optimizer with ${this.optimizer.name}({ momentum })`);
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const out = [await this.saveIterations()];
    if (this.state === null) return out;
    const paths = stateLeafPaths(this.state.inner);
    stateLeaves(this.state.inner).forEach((leaf, i) => {
      out.push({ name: `lopt/${paths[i]}`, tensor: typeof leaf === 'number' ? tf.scalar(leaf) : leaf });
    });
    return out;
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    // The caller (tfjs-layers' loader) disposes what it passes in: keep copies.
    const leaves = rest.map((w) => tf.keep(tf.clone(w.tensor)));
    if (this.state === null) {
      if (this.restored !== null) tf.dispose(this.restored);
      this.restored = leaves;
    } else {
      this.adopt(leaves);
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.optimizer.toConfig() as unknown as tf.serialization.ConfigDict;
  }

  /** What tfjs-layers' loader calls for a saved 'lopt.Optimizer': rebuild it from `{ optimizer, options }`. */
  static override fromConfig<T extends tf.serialization.Serializable>(
    _cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { optimizer, options } = config as { optimizer?: unknown; options?: unknown };
    if (typeof optimizer !== 'string') {
      throw new Error(`lopt.Optimizer config: 'optimizer' must be an optimizer name; got ${showValue(optimizer)}`);
    }
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
      throw new Error(`lopt.Optimizer config: 'options' must be an object; got ${showValue(options)}`);
    }
    return new TfjsOptimizer(createOptimizer(optimizer, (options ?? {}) as Record<string, unknown>)) as unknown as T;
  }

  override dispose(): void {
    if (this.state !== null) disposeState(this.state.inner);
    if (this.restored !== null) tf.dispose(this.restored);
    this.state = null;
    this.restored = null;
  }
}

// tfjs-layers finds the class by its className when it loads a model saved with its optimizer.
tf.serialization.registerClass(TfjsOptimizer);

/**
 * A lopt optimizer (a baseline, or a learned optimizer's `optimizer(theta)`) as a tf.Optimizer for
 * `model.compile({ optimizer: asTfjsOptimizer(lamb({ learningRate: 1e-3 })) })`.
 */
export function asTfjsOptimizer(optimizer: Optimizer): TfjsOptimizer {
  return new TfjsOptimizer(optimizer);
}
