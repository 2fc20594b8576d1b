// The metrics of the run the Tune screen shows: stored history (runs.metrics) plus live
// job.progress events. Series live in plain arrays, outside Svelte's reactivity, so a long run costs
// one array push per step; the reactive state (the numbers on screen and `frame`, which charts
// watch) changes at most once per animation frame however fast events come.
import type { EventPayload, RunMetricPoint } from '../../../../electron/ipc/contract';

export interface HeatColumn {
  step: number;
  scores: number[];
}

export class LiveRun {
  /** Plain series (not reactive): x = step. */
  readonly steps: number[] = [];
  readonly loss: number[] = [];
  readonly lr: number[] = [];
  /** One column per step that reported importance scores. */
  readonly columns: HeatColumn[] = [];

  /** Bumped once per animation frame after new data: charts redraw when it changes. */
  frame = $state(0);
  /** Bumped when the series were replaced (not appended): charts redraw from scratch. */
  epoch = $state(0);
  step = $state(0);
  total = $state<number | null>(null);
  lastLoss = $state<number | null>(null);
  lastLr = $state<number | null>(null);
  tokensPerSecond = $state<number | null>(null);
  etaSeconds = $state<number | null>(null);
  selected = $state<number[]>([]);
  tunableLayers = $state<number[]>([]);
  message = $state('');
  provider = $state<string | null>(null);
  evalLossBefore = $state<number | null>(null);
  evalLossAfter = $state<number | null>(null);
  lastCheckpoint = $state<number | null>(null);

  private pending: {
    step?: number;
    total?: number | null;
    loss?: number;
    lr?: number;
    tps?: number;
    eta?: number;
    selected?: number[];
    message?: string;
  } = {};
  private scheduled = false;

  constructor(readonly runId: string) {}

  get lastStep(): number {
    return this.steps.length > 0 ? this.steps[this.steps.length - 1]! : -1;
  }

  /** Replaces the series with stored rows (a run opened from the list, or a resumed one). */
  load(rows: RunMetricPoint[], tunableLayers: number[] | null): void {
    // Live steps that arrived while the history loaded and are newer than it are kept.
    const lastStored = rows.length > 0 ? rows[rows.length - 1]!.step : -1;
    const newer: Array<[number, number, number, number[] | null]> = [];
    for (let i = 0; i < this.steps.length; i++) {
      if (this.steps[i]! > lastStored) newer.push([this.steps[i]!, this.loss[i]!, this.lr[i]!, this.columns.find((c) => c.step === this.steps[i])?.scores ?? null]);
    }
    this.steps.length = 0;
    this.loss.length = 0;
    this.lr.length = 0;
    this.columns.length = 0;
    for (const r of rows) this.append(r.step, r.loss, r.lr, r.importance);
    for (const [step, loss, lr, scores] of newer) this.append(step, loss, lr, scores);
    const last = rows[rows.length - 1];
    if (tunableLayers) this.tunableLayers = tunableLayers;
    else if (last?.importance && this.tunableLayers.length === 0) this.tunableLayers = last.importance.map((_, i) => i);
    if (last && newer.length === 0) {
      this.step = last.step;
      this.lastLoss = last.loss;
      this.lastLr = last.lr;
      this.tokensPerSecond = last.tokensPerSecond;
      this.selected = last.selected ?? [];
    }
    this.epoch++;
    this.frame++;
  }

  private append(step: number, loss: number | null, lr: number | null, importance: number[] | null): void {
    this.steps.push(step);
    this.loss.push(loss ?? Number.NaN);
    this.lr.push(lr ?? Number.NaN);
    if (importance && importance.length > 0) this.columns.push({ step, scores: importance });
  }

  /** Takes one job.progress event of this run. */
  receive(p: EventPayload<'job.progress'>): void {
    const m = p.metrics;
    switch (p.stage) {
      case 'started':
        this.total = p.total;
        this.step = p.step;
        if (p.series?.tunableLayers) this.tunableLayers = p.series.tunableLayers;
        this.message = p.message;
        this.provider = /on ([A-Z]+):/.exec(p.message)?.[1] ?? null;
        return;
      case 'step':
        // A resumed run repeats no step, but history loaded late may already hold this one.
        if (p.step <= this.lastStep) return;
        this.append(p.step, m.loss ?? null, m.lr ?? null, p.series?.importance ?? null);
        this.pending = {
          step: p.step,
          total: p.total,
          loss: m.loss ?? Number.NaN,
          lr: m.lr ?? Number.NaN,
          tps: m.tokensPerSecond ?? Number.NaN,
          eta: m.etaSeconds ?? Number.NaN,
          selected: p.series?.selected ?? [],
          message: p.message,
        };
        this.schedule();
        return;
      case 'evaluated':
        if (m.evalLossBefore !== undefined) this.evalLossBefore = m.evalLossBefore;
        if (m.evalLossAfter !== undefined) this.evalLossAfter = m.evalLossAfter;
        this.message = p.message;
        return;
      case 'checkpoint':
        this.lastCheckpoint = m.checkpointStep ?? p.step;
        return;
      default:
        this.message = p.message;
    }
  }

  /** One state update per animation frame, whatever the event rate. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const q = this.pending;
      this.pending = {};
      if (q.step !== undefined) this.step = q.step;
      if (q.total !== undefined) this.total = q.total;
      if (q.loss !== undefined) this.lastLoss = Number.isFinite(q.loss) ? q.loss : null;
      if (q.lr !== undefined) this.lastLr = Number.isFinite(q.lr) ? q.lr : null;
      if (q.tps !== undefined) this.tokensPerSecond = Number.isFinite(q.tps) ? q.tps : null;
      if (q.eta !== undefined) this.etaSeconds = Number.isFinite(q.eta) ? q.eta : null;
      if (q.selected !== undefined) this.selected = q.selected;
      if (q.message !== undefined) this.message = q.message;
      this.frame++;
    });
  }
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} min` : m > 0 ? `${m} min ${String(r).padStart(2, '0')} s` : `${r} s`;
}
