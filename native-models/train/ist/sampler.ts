// Layer samplers for sparse tuning: which tunable layers get gradients and optimizer updates at a
// step. `ist` is importance-aware sparse tuning (ALGORITHMS.md §4, IST reference constants);
// `uniform` is LISA-style uniform sampling of the same number of layers; `all` trains every layer.
//
// IST keeps a score per tunable layer (init 0; HIGH SCORE = LESS IMPORTANT, the reference
// convention):
// - every step: n_train = max(1, floor(ratio · L)) layers, drawn multinomially without replacement
//   with weights sigmoid(−score) (important layers are drawn more often);
// - every `interval` steps (step > 0): `rlSteps` distinct suppression sets of
//   n_supp = max(1, floor(suppressRatio · L)) layers, drawn with weights sigmoid(score); the caller
//   evaluates the loss once per set with those layers' adapter outputs scaled by `suppressFactor`
//   (no gradient); reward_k = exp(−loss_k) − mean_j exp(−loss_j); with p = sigmoid(score) taken
//   once before the update, every layer i of set k gets score_i += scoreLr · reward_k · p_i(1 − p_i).
//   Suppressing a layer that barely matters keeps the loss low → positive reward → its score
//   rises → it is trained less.
// All randomness comes from one mulberry32 stream whose state is saved with the scores, so a
// restored sampler makes exactly the choices the original would have made.
import { Rng, sampleWithoutReplacement } from '../../data/prng';

export type SamplerKind = 'all' | 'uniform' | 'ist';

export interface IstSettings {
  /** Fraction of tunable layers trained per step (default 0.25). */
  ratio: number;
  /** Steps between importance updates (default 10). */
  interval: number;
  /** Suppression sets (no-gradient forward passes) per update (default 3). */
  rlSteps: number;
  /** Fraction of layers suppressed in each set (default 0.5). */
  suppressRatio: number;
  /** Scale of a suppressed layer's adapter output (default 0.25, the response suppression factor). */
  suppressFactor: number;
  /** Step size of the score update (default 10). */
  scoreLr: number;
}

export const IST_DEFAULTS: Readonly<IstSettings> = Object.freeze({ ratio: 0.25, interval: 10, rlSteps: 3, suppressRatio: 0.5, suppressFactor: 0.25, scoreLr: 10 });

export interface SamplerOptions extends Partial<IstSettings> {
  kind: SamplerKind;
  /** Number of tunable layers L_t (indices 0..L_t−1; map them to model layers yourself). */
  layers: number;
  seed?: number;
}

/** Everything needed to continue exactly where a sampler stopped (JSON-serialisable). */
export interface SamplerState {
  kind: SamplerKind;
  layers: number;
  settings: IstSettings;
  rngState: number;
  scores: number[];
  /** The last step `select` was called for, or −1. */
  lastStep: number;
  /** Importance updates done so far. */
  updates: number;
}

/** One importance update, as the run's metrics record it. */
export interface ImportanceUpdate {
  sets: number[][];
  losses: number[];
  rewards: number[];
  scores: number[];
}

/** What to record in the run's metrics after `select(step)`. */
export interface SamplerRecord {
  step: number;
  selected: number[];
  /** The score vector after this step's work (high = less important). */
  scores: number[];
}

/** Evaluates the loss with each layer's adapter output scaled by `scales[layer]` (no gradient). */
export type SuppressedLoss = (scales: Float32Array, suppressed: readonly number[]) => number | Promise<number>;

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

function checkSettings(s: IstSettings): void {
  const fraction = (name: string, v: number): void => {
    if (!(v > 0 && v <= 1)) throw new RangeError(`IST ${name} must be above 0 and at most 1, not ${v}.`);
  };
  fraction('ratio', s.ratio);
  fraction('suppressRatio', s.suppressRatio);
  if (!Number.isInteger(s.interval) || s.interval < 1) throw new RangeError(`IST interval must be a whole number of steps ≥ 1, not ${s.interval}.`);
  if (!Number.isInteger(s.rlSteps) || s.rlSteps < 1) throw new RangeError(`IST rlSteps must be a whole number ≥ 1, not ${s.rlSteps}.`);
  if (!(s.suppressFactor >= 0 && s.suppressFactor <= 1)) throw new RangeError(`IST suppressFactor must be from 0 to 1, not ${s.suppressFactor}.`);
  if (!(Number.isFinite(s.scoreLr) && s.scoreLr >= 0)) throw new RangeError(`IST scoreLr must be a number ≥ 0, not ${s.scoreLr}.`);
}

/** Rejection draws allowed per suppression set before a round settles for the distinct sets it has. */
const MAX_DRAWS_PER_SET = 10_000;

export class LayerSampler {
  readonly kind: SamplerKind;
  readonly layers: number;
  readonly settings: IstSettings;
  private rng: Rng;
  private scoresV: Float64Array;
  private lastStep = -1;
  private lastSelected: number[] = [];
  private updates = 0;

  constructor(options: SamplerOptions) {
    if (!['all', 'uniform', 'ist'].includes(options.kind)) throw new RangeError(`The layer sampler must be all, uniform or ist, not "${String(options.kind)}".`);
    if (!Number.isInteger(options.layers) || options.layers < 1) throw new RangeError(`A layer sampler needs at least 1 tunable layer, not ${options.layers}.`);
    this.kind = options.kind;
    this.layers = options.layers;
    const pick = <K extends keyof IstSettings>(k: K): IstSettings[K] => options[k] ?? IST_DEFAULTS[k];
    this.settings = { ratio: pick('ratio'), interval: pick('interval'), rlSteps: pick('rlSteps'), suppressRatio: pick('suppressRatio'), suppressFactor: pick('suppressFactor'), scoreLr: pick('scoreLr') };
    checkSettings(this.settings);
    this.rng = new Rng(options.seed ?? 0);
    this.scoresV = new Float64Array(this.layers);
  }

  /** Layers trained per step: all of them for `all`, else max(1, floor(ratio · L)). */
  get trainCount(): number {
    return this.kind === 'all' ? this.layers : Math.max(1, Math.floor(this.settings.ratio * this.layers));
  }

  /** Layers per suppression set: max(1, floor(suppressRatio · L)). */
  get suppressCount(): number {
    return Math.max(1, Math.floor(this.settings.suppressRatio * this.layers));
  }

  /** A copy of the scores (high = less important). */
  scores(): number[] {
    return Array.from(this.scoresV);
  }

  /** The layers to train at `step`, ascending. Steps must increase from call to call. */
  select(step: number): number[] {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`The step must be a whole number ≥ 0, not ${step}.`);
    if (step <= this.lastStep) throw new RangeError(`Layers for step ${step} were already chosen (the last step was ${this.lastStep}); steps must increase.`);
    let chosen: number[];
    if (this.kind === 'all') chosen = Array.from({ length: this.layers }, (_, i) => i);
    else {
      const weights = this.kind === 'ist' ? Array.from(this.scoresV, (s) => sigmoid(-s)) : new Array<number>(this.layers).fill(1);
      chosen = sampleWithoutReplacement(this.rng, weights, this.trainCount).sort((a, b) => a - b);
    }
    this.lastStep = step;
    this.lastSelected = chosen;
    return [...chosen];
  }

  /** What to store in the run's metrics for the last selected step. */
  record(): SamplerRecord {
    return { step: this.lastStep, selected: [...this.lastSelected], scores: this.scores() };
  }

  /** True on steps interval, 2·interval, … (never step 0) for `ist`; never for the others. */
  needsImportanceUpdate(step: number): boolean {
    return this.kind === 'ist' && step > 0 && step % this.settings.interval === 0;
  }

  /**
   * Draws the suppression sets of one update: `rlSteps` distinct sets (fewer only when fewer
   * distinct sets exist), each drawn with weights sigmoid(score).
   */
  drawSuppressionSets(): number[][] {
    const n = this.suppressCount;
    const wanted = Math.min(this.settings.rlSteps, binomial(this.layers, n));
    const weights = Array.from(this.scoresV, (s) => sigmoid(s));
    const sets: number[][] = [];
    const seen = new Set<string>();
    let draws = 0;
    while (sets.length < wanted && draws < MAX_DRAWS_PER_SET * wanted) {
      draws++;
      const set = sampleWithoutReplacement(this.rng, weights, n).sort((a, b) => a - b);
      const key = set.join(',');
      if (seen.has(key)) continue;
      seen.add(key);
      sets.push(set);
    }
    return sets;
  }

  /**
   * One importance update (call when needsImportanceUpdate(step)). `loss` is called once per
   * suppression set, in order, with per-layer scales (1, or suppressFactor for suppressed layers).
   */
  async updateImportance(loss: SuppressedLoss): Promise<ImportanceUpdate> {
    if (this.kind !== 'ist') throw new Error(`Only the ist sampler keeps importance scores; this one is "${this.kind}".`);
    const sets = this.drawSuppressionSets();
    const losses: number[] = [];
    for (const set of sets) {
      const scales = new Float32Array(this.layers).fill(1);
      for (const i of set) scales[i] = this.settings.suppressFactor;
      const value = await loss(scales, [...set]);
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(`The loss with layers ${set.join(', ')} suppressed is ${String(value)}, not a finite number; the importance update was not applied (check the learning rate and the data).`);
      }
      losses.push(value);
    }
    const e = losses.map((l) => Math.exp(-l));
    const mean = e.reduce((a, b) => a + b, 0) / e.length;
    const rewards = e.map((x) => x - mean);
    const p = Array.from(this.scoresV, (s) => sigmoid(s)); // taken once, before any set is applied
    sets.forEach((set, k) => {
      for (const i of set) this.scoresV[i]! += this.settings.scoreLr * rewards[k]! * p[i]! * (1 - p[i]!);
    });
    this.updates++;
    return { sets, losses, rewards, scores: this.scores() };
  }

  state(): SamplerState {
    return { kind: this.kind, layers: this.layers, settings: { ...this.settings }, rngState: this.rng.state, scores: this.scores(), lastStep: this.lastStep, updates: this.updates };
  }

  /** Continues from a saved state (same kind, layers and settings as this sampler). */
  restore(state: SamplerState): void {
    if (state.kind !== this.kind || state.layers !== this.layers) {
      throw new Error(`The saved layer sampler is ${state.kind} over ${state.layers} layers, but this run uses ${this.kind} over ${this.layers}; resume with the same settings.`);
    }
    const differs = (Object.keys(IST_DEFAULTS) as Array<keyof IstSettings>).filter((k) => state.settings[k] !== this.settings[k]);
    if (differs.length > 0) throw new Error(`The saved layer sampler has different settings (${differs.join(', ')}); resume with the same settings.`);
    if (state.scores.length !== this.layers || !state.scores.every(Number.isFinite)) throw new Error(`The saved layer sampler's scores do not fit ${this.layers} layers.`);
    this.rng = Rng.fromState(state.rngState);
    this.scoresV = Float64Array.from(state.scores);
    this.lastStep = state.lastStep;
    this.updates = state.updates;
    this.lastSelected = [];
  }
}

export function createLayerSampler(options: SamplerOptions): LayerSampler {
  return new LayerSampler(options);
}

/** A sampler rebuilt from a saved state alone (kind, layers and settings come from the state). */
export function restoreLayerSampler(state: SamplerState): LayerSampler {
  const s = new LayerSampler({ kind: state.kind, layers: state.layers, ...state.settings });
  s.restore(state);
  return s;
}
