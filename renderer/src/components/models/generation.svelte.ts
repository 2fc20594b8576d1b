// The generation the Models screen shows (and the model path it works on), kept outside the
// screen so that leaving the screen and coming back mid-run still shows it streaming. Events of kind "generate" fold into the view; the
// finished result (tokens, text, finish reason, timings, execution provider) is read from
// generate.status when job.finished arrives.
import type { EventPayload, GenerationView, InspectView, Request } from '../../../../electron/ipc/contract';

class LiveGeneration {
  job = $state<GenerationView | null>(null);
  starting = $state(false);
  cancelling = $state(false);
  /** A sentence saying why the last start, cancel or status call failed. */
  error = $state<string | null>(null);

  private subscribed = false;
  /** Ids that finished while generate.start had not answered yet (a tiny model can be that quick). */
  private readonly endedEarly = new Set<string>();

  readonly running = $derived(this.starting || this.job?.status === 'running');

  /** Listens for the job events once, for the life of the page. */
  listen(): void {
    if (this.subscribed) return;
    this.subscribed = true;
    window.offsite.on('job.progress', (p) => this.progress(p));
    window.offsite.on('job.finished', (p) => {
      if (p.kind !== 'generate') return;
      if (this.job?.id === p.jobId) void this.refresh(p.jobId);
      else if (this.starting) this.endedEarly.add(p.jobId);
    });
  }

  private progress(p: EventPayload<'job.progress'>): void {
    const job = this.job;
    if (p.kind !== 'generate' || !job || p.jobId !== job.id || job.status !== 'running') return;
    // The status line keeps the started message (model and execution provider); the count shows progress.
    if (p.stage === 'started') job.message = p.message;
    else if (p.stage === 'tokens') {
      job.tokens = p.series?.tokens ?? job.tokens;
      job.text = p.text ?? job.text;
    }
  }

  private async refresh(id: string): Promise<void> {
    const r = await window.offsite.generate.status({ id });
    if (r.ok) {
      if (this.job === null || this.job.id === id) this.job = r.value;
      if (r.value.status !== 'running') this.cancelling = false;
    } else this.error = r.error.message;
  }

  async start(request: Request<'generate.start'>): Promise<void> {
    this.error = null;
    this.starting = true;
    this.endedEarly.clear();
    const r = await window.offsite.generate.start(request);
    if (!r.ok) {
      this.starting = false;
      this.error = r.error.message;
      return;
    }
    // Events that came before the answer are covered by reading the status now.
    this.job = null;
    await this.refresh(r.value.id);
    this.starting = false;
    if (this.endedEarly.has(r.value.id)) await this.refresh(r.value.id);
  }

  async cancel(): Promise<void> {
    const job = this.job;
    if (!job || job.status !== 'running') return;
    this.cancelling = true;
    const r = await window.offsite.generate.cancel({ id: job.id });
    if (!r.ok) {
      this.error = r.error.message;
      this.cancelling = false;
    }
  }
}

export const liveGeneration = new LiveGeneration();

/** The Models screen's model path and what Inspect said about it, kept across visits. */
export const modelsScreen = $state<{ path: string; inspected: InspectView | null }>({ path: '', inspected: null });
