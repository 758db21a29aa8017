import * as tf from '@tensorflow/tfjs-core';
import type { Params } from '../tree/params.js';
import { disposeReplaced, stateTensors, type StateTree } from '../tree/stateTree.js';
import type { GradientTransformation, UpdateContext } from './transform.js';
import { readsStatisticsAt, type LayerStatisticsReader } from './layerStatistics.js';
import { printable } from '../text/printable.js';
import { tidyTree } from '../tree/tidy.js';

export interface ParamSpec {
  name: string;
  shape: number[];
}

/** An optimizer's state: the transformation's state tree plus the parameter layout it was made for. */
export interface OptimizerState {
  readonly spec: readonly ParamSpec[];
  readonly inner: StateTree;
}

const shapeText = (s: readonly number[]) => `[${s.join(',')}]`;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * A named gradient transformation with validated options: what users construct (`lamb({...})`),
 * step functionally, or hand to tfjs-layers as `asTfjsOptimizer(lamb({...}))` (src/tfjs/adapter.ts).
 */
export class Optimizer<O extends object = object> {
  constructor(
    readonly name: string,
    readonly options: Readonly<O>,
    readonly transform: GradientTransformation,
    /** The options as JSON (schedules as their configs); throws when an option cannot be serialized. */
    private readonly serialize: () => Record<string, unknown>,
    /** When the optimizer reads layer statistics (UpdateContext.layerStatistics); absent: never. */
    readonly layerStatistics?: LayerStatisticsReader,
  ) {
    // Hyperparameters are fixed at construction: changing one later must fail loudly, never be
    // silently ignored (as tfjs's own setMomentum is). Use a schedule, or build a new optimizer.
    Object.freeze(options);
    Object.freeze(this);
  }

  /**
   * Whether the next update from `state` reads `context.layerStatistics`: a training loop computes
   * them (Task.lossGradsAndStatistics) only then.
   */
  wantsLayerStatistics(state: OptimizerState): boolean {
    const reader = this.layerStatistics;
    return reader !== undefined && readsStatisticsAt(reader.schedule, reader.clock(state.inner));
  }

  init(params: Params): OptimizerState {
    if (typeof params !== 'object' || params === null) {
      throw new Error(`${this.name}: parameters must be a map from parameter name to tensor; got ${String(params)}`);
    }
    for (const [name, t] of Object.entries(params)) {
      this.checkTensor('parameter', name, t);
      // An empty tensor has no elements to update, and norms and means over it are 0/0: every
      // optimizer refuses it here the same way rather than each failing (or not) in its own math.
      if (t.size === 0) {
        throw new Error(
          `${this.name}: parameter '${printable(name)}' has shape ${shapeText(t.shape)}, no elements; leave it out of the parameters (there is nothing to update)`,
        );
      }
    }
    const spec = Object.entries(params).map(([name, t]) => ({ name, shape: t.shape.slice() }));
    return { spec, inner: this.transform.init(params) };
  }

  /**
   * The updates to add to the parameters, and the next state. Inputs are neither changed nor
   * disposed; the new state may share tensors with the old one (dispose the old with
   * disposeReplaced(old.inner, next.inner)). `context.loss` is the training loss at `params`
   * (required by optimizers that read it, such as VeLO; ignored by the others).
   */
  update(grads: Params, state: OptimizerState, params: Params, context?: UpdateContext): { updates: Params; state: OptimizerState } {
    this.check('gradient', grads, state.spec);
    this.check('parameter', params, state.spec);
    const r = tidyTree(() => {
      const { updates, state: inner } = this.transform.update(grads, state.inner, params, context);
      // Updates never alias the caller's gradients or the state (e.g. a momentum trace), so the
      // caller may dispose them freely.
      const held = new Set<tf.Tensor>([...Object.values(grads), ...stateTensors(inner)]);
      const fresh: Params = {};
      for (const [name, u] of Object.entries(updates)) fresh[name] = held.has(u) ? tf.clone(u) : u;
      return { updates: fresh, inner };
    });
    return { updates: r.updates, state: { spec: state.spec, inner: r.inner } };
  }

  /**
   * One step: returns the new parameters and state, and disposes the parameters and state it
   * replaced (not the gradients nor the loss in `context`).
   */
  step(params: Params, grads: Params, state: OptimizerState, context?: UpdateContext): { params: Params; state: OptimizerState } {
    this.check('gradient', grads, state.spec);
    this.check('parameter', params, state.spec);
    const r = tidyTree(() => {
      const { updates, state: inner } = this.transform.update(grads, state.inner, params, context);
      const next: Params = {};
      for (const [name, p] of Object.entries(params)) next[name] = tf.add(p, updates[name]!);
      return { next, inner };
    });
    disposeReplaced(state.inner, r.inner);
    for (const [name, p] of Object.entries(params)) if (r.next[name] !== p) p.dispose();
    return { params: r.next, state: { spec: state.spec, inner: r.inner } };
  }

  /** The JSON form `{ optimizer, options }` that createOptimizer() rebuilds. */
  toConfig(): { optimizer: string; options: Record<string, unknown> } {
    return { optimizer: this.name, options: this.serialize() };
  }

  private check(kind: 'gradient' | 'parameter', tree: Params, spec: readonly ParamSpec[]): void {
    if (typeof tree !== 'object' || tree === null) {
      throw new Error(`${this.name}: ${kind}s must be a map from parameter name to tensor; got ${String(tree)}`);
    }
    const given = Object.keys(tree);
    if (given.length !== spec.length || spec.some((s) => !(s.name in tree))) {
      const missing = spec.find((s) => !(s.name in tree));
      if (missing) {
        throw new Error(`${this.name}: no ${kind} given for '${missing.name}' (expected names: ${spec.map((s) => s.name).join(', ')})`);
      }
      const extra = given.find((n) => !spec.some((s) => s.name === n));
      throw new Error(`${this.name}: ${kind} given for unknown parameter '${extra}' (expected names: ${spec.map((s) => s.name).join(', ')})`);
    }
    for (const s of spec) {
      const t = tree[s.name];
      this.checkTensor(kind, s.name, t);
      if (!sameShape(t.shape, s.shape)) {
        throw new Error(`${this.name}: ${kind} '${s.name}' has shape ${shapeText(t!.shape)}, expected ${shapeText(s.shape)}`);
      }
    }
  }

  /** Every optimizer's math is float32: an int32 or bool tensor is refused, never cast silently. */
  private checkTensor(kind: 'gradient' | 'parameter', name: string, t: unknown): asserts t is tf.Tensor {
    if (!(t instanceof tf.Tensor)) throw new Error(`${this.name}: ${kind} '${printable(name)}' is not a tensor`);
    if (t.dtype !== 'float32') {
      throw new Error(`${this.name}: ${kind} '${printable(name)}' is ${t.dtype}; lopt optimizers update float32 tensors (cast it: tf.cast(t, 'float32'))`);
    }
  }
}
