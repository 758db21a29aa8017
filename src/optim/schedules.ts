/**
 * Learning-rate schedules: functions of the number of updates already applied (0 for the first
 * step, as optax and Keras count), carrying a JSON config so that optimizers using them serialize.
 */
export type ScheduleConfig =
  | { type: 'constant'; value: number }
  | { type: 'warmupCosine'; peak: number; warmupSteps: number; totalSteps: number; init?: number; end?: number }
  | { type: 'warmupPolynomial'; peak: number; warmupSteps: number; totalSteps: number; power?: number; end?: number }
  | { type: 'mlperfPoly2'; peak: number; warmupSteps: number; totalSteps: number; end?: number };

export interface Schedule {
  (count: number): number;
  readonly config: ScheduleConfig;
}

function finite(name: string, x: unknown, min: number): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < min) {
    throw new Error(`schedule: '${name}' must be a finite number >= ${min}; got ${String(x)}`);
  }
  return x;
}

function steps(c: { warmupSteps: number; totalSteps: number }): void {
  finite('warmupSteps', c.warmupSteps, 0);
  finite('totalSteps', c.totalSteps, 1);
  if (c.warmupSteps > c.totalSteps) {
    throw new Error(`schedule: 'warmupSteps' (${c.warmupSteps}) must not exceed 'totalSteps' (${c.totalSteps})`);
  }
}

const attach = (fn: (count: number) => number, config: ScheduleConfig): Schedule => Object.assign(fn, { config });

export function constantSchedule(value: number): Schedule {
  finite('value', value, 0);
  return attach(() => value, { type: 'constant', value });
}

/**
 * optax.warmup_cosine_decay_schedule: linear from `init` to `peak` over `warmupSteps`, then a cosine
 * from `peak` to `end` reaching `end` at `totalSteps`, constant after.
 */
export function warmupCosine(c: { peak: number; warmupSteps: number; totalSteps: number; init?: number; end?: number }): Schedule {
  const init = c.init ?? 0;
  const end = c.end ?? 0;
  finite('peak', c.peak, 0);
  finite('init', init, 0);
  finite('end', end, 0);
  steps(c);
  const { peak, warmupSteps: w, totalSteps: T } = c;
  return attach(
    (t) => {
      if (t < w) return init + ((peak - init) * t) / w;
      const frac = Math.min((t - w) / Math.max(T - w, 1), 1);
      return end + 0.5 * (peak - end) * (1 + Math.cos(Math.PI * frac));
    },
    { type: 'warmupCosine', ...c, init, end },
  );
}

/**
 * BERT / LAMB (google-research/bert optimization.py): polynomial decay from `peak` to `end` over
 * `totalSteps` counted from step 0, replaced during the first `warmupSteps` by peak·t/warmupSteps.
 */
export function warmupPolynomial(c: { peak: number; warmupSteps: number; totalSteps: number; power?: number; end?: number }): Schedule {
  const power = c.power ?? 1;
  const end = c.end ?? 0;
  finite('peak', c.peak, 0);
  finite('power', power, 0);
  finite('end', end, 0);
  steps(c);
  const { peak, warmupSteps: w, totalSteps: T } = c;
  return attach(
    (t) => {
      if (t < w) return (peak * t) / w;
      const frac = Math.min(t, T) / T;
      return (peak - end) * Math.pow(1 - frac, power) + end;
    },
    { type: 'warmupPolynomial', ...c, power, end },
  );
}

/**
 * MLPerf ResNet-50 LARS: linear warmup to `peak`, then (peak − end)·(1 − (t − w)/(T − w))² + end.
 */
export function mlperfPoly2(c: { peak: number; warmupSteps: number; totalSteps: number; end?: number }): Schedule {
  const end = c.end ?? 0;
  finite('peak', c.peak, 0);
  finite('end', end, 0);
  steps(c);
  const { peak, warmupSteps: w, totalSteps: T } = c;
  return attach(
    (t) => {
      if (t < w) return (peak * t) / w;
      const frac = Math.min((t - w) / Math.max(T - w, 1), 1);
      return (peak - end) * (1 - frac) * (1 - frac) + end;
    },
    { type: 'mlperfPoly2', ...c, end },
  );
}

const SCHEDULE_KEYS: Record<ScheduleConfig['type'], string[]> = {
  constant: ['value'],
  warmupCosine: ['peak', 'warmupSteps', 'totalSteps', 'init', 'end'],
  warmupPolynomial: ['peak', 'warmupSteps', 'totalSteps', 'power', 'end'],
  mlperfPoly2: ['peak', 'warmupSteps', 'totalSteps', 'end'],
};

export function isSchedule(x: unknown): x is Schedule {
  return typeof x === 'function' && typeof (x as { config?: unknown }).config === 'object';
}

/** Rebuilds a schedule from its JSON config (untrusted: every field is checked). */
export function scheduleFromConfig(config: unknown): Schedule {
  if (typeof config !== 'object' || config === null) {
    throw new Error(`schedule: config must be an object with a 'type'; got ${JSON.stringify(config)}`);
  }
  const c = config as Record<string, unknown>;
  const { type, ...rest } = c;
  const allowed = SCHEDULE_KEYS[type as ScheduleConfig['type']];
  if (allowed) {
    const extra = Object.keys(rest).filter((k) => !allowed.includes(k));
    if (extra.length > 0) {
      throw new Error(`schedule ${String(type)}: unknown field '${extra[0]}'; allowed: ${allowed.join(', ')}`);
    }
  }
  switch (type) {
    case 'constant':
      return constantSchedule(rest.value as number);
    case 'warmupCosine':
      return warmupCosine(rest as Parameters<typeof warmupCosine>[0]);
    case 'warmupPolynomial':
      return warmupPolynomial(rest as Parameters<typeof warmupPolynomial>[0]);
    case 'mlperfPoly2':
      return mlperfPoly2(rest as Parameters<typeof mlperfPoly2>[0]);
    default:
      throw new Error(`schedule: unknown type ${JSON.stringify(type)}; allowed: constant, warmupCosine, warmupPolynomial, mlperfPoly2`);
  }
}
