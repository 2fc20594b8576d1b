// The budgets of `offsite demo` (electron/services/demo.ts): how many steps each stage of the
// offsite-tuning pipeline runs on the bundled demo assets, for the normal demo and for --quick.
// Chosen so the whole demo fits 10 minutes (quick: 2 minutes) on a quiet 2-core machine.
//
// Measured (development machine: 2 cores shared with other work, load average 5.4–7.9, so wall
// time there is inflated by the other load; CPU time of the whole process, worker threads
// included, is the better guide for a quiet machine, and the demo prints both for every stage):
//   normal                         wall s   CPU s
//   ScaleOT build, 100 steps         249      84   (incl. Emu/Full ZS on 6 held-out chapters, 43k tokens)
//   email-lm tuning on emulator      152      69   (80 updates, 8 × 256 tokens)
//   email-lm plug-in                   2       1
//   email-lm Full FT                 168      94
//   email-lm five evaluations        163      66   (200 test emails)
//   ham-spam tuning on emulator       75      60
//   ham-spam Full FT                 102      91
//   ham-spam five evaluations         97      66   (200 test items)
//   keys, import, export, audit       <1      <1
//   total                           1011     536
//   quick (load average 5.4–6.1): total 93 s wall, 74 s CPU — build 6.5, tunings 4.6–9.9 each,
//   five evaluations 30 s (email-lm) and 19 s (ham-spam): worker start-up and graph compilation
//   dominate, which is why --quick evaluates 32 test examples per task.
//
// Fairness rule of the results table (ALGORITHMS.md §1): Emu FT / Plug-in (tuned on the emulator)
// and Full FT (tuned on the full model) use the SAME tuning settings — steps, batch, sequence
// length, LoRA rank/alpha/targets, learning rate and schedule, IST sampler — per task. Only the
// layers differ: the emulator run tunes its adapter blocks, the Full FT baseline all layers.

/** One tuning budget, shared by the emulator run and the Full FT baseline of a task. */
export interface DemoTuning {
  steps: number;
  batchSize: number;
  seqLen: number;
  rank: number;
  alpha: number;
  dropout: number;
  targets: string[];
  sampler: 'all' | 'ist' | 'uniform';
  istRatio: number;
  lr: number;
  warmup: number;
  schedule: 'constant' | 'linear' | 'cosine';
  seed: number;
}

/** The ScaleOT emulator build (the model owner's side): triplet (N_a, α, β) and distillation. */
export interface DemoEmulatorBudget {
  adapterLayers: [number, number];
  alpha: number;
  beta: number;
  groupSize: number;
  steps: number;
  interval: number;
  batchSize: number;
  seqLen: number;
  lr: number;
  /** Moby Dick chapters used as distillation text (null: all 129 training chapters). */
  distillChapters: number | null;
  /** Fraction of the distillation chapters held out for the Emu ZS / Full ZS reference perplexity. */
  validationFraction: number;
}

export type DemoTaskName = 'email-lm' | 'ham-spam';

export interface DemoTaskBudget {
  task: DemoTaskName;
  tuning: DemoTuning;
  /** Test examples evaluated per column (null: the whole test split). */
  evalExamples: number | null;
}

export interface DemoBudget {
  name: 'normal' | 'quick';
  emulator: DemoEmulatorBudget;
  /** In order; the first is the primary task of the --json output. */
  tasks: DemoTaskBudget[];
  /** Windows (ppl) or choice requests (mc) per forward pass. */
  evalBatchSize: number;
}

// IST reference LoRA targets (ALGORITHMS.md §4): attention q, k, v and the MLP's up and down.
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'];

const tuning = (t: Partial<DemoTuning> & Pick<DemoTuning, 'steps'>): DemoTuning => ({
  batchSize: 8,
  seqLen: 256,
  rank: 8,
  alpha: 16,
  dropout: 0,
  targets: TARGETS,
  sampler: 'ist',
  istRatio: 0.5,
  lr: 3e-3,
  warmup: 0,
  schedule: 'linear',
  seed: 0,
  ...t,
});

/**
 * Learning rates are above the LLaMA-7B reference
 * (2e-4) because the demo model is tiny (d 128) and the budget is a few dozen updates; IST keeps
 * half of the tunable layers per step (ratio 0.5) so that 4 adapter blocks still see 2 per step.
 */
export const DEMO_BUDGETS: Record<'normal' | 'quick', DemoBudget> = {
  normal: {
    name: 'normal',
    emulator: { adapterLayers: [2, 2], alpha: 0.5, beta: 0.5, groupSize: 4, steps: 100, interval: 10, batchSize: 8, seqLen: 256, lr: 2e-3, distillChapters: null, validationFraction: 0.05 },
    tasks: [
      { task: 'email-lm', tuning: tuning({ steps: 80 }), evalExamples: null },
      { task: 'ham-spam', tuning: tuning({ steps: 80, lr: 5e-3 }), evalExamples: null },
    ],
    evalBatchSize: 8,
  },
  quick: {
    name: 'quick',
    emulator: { adapterLayers: [2, 2], alpha: 0.5, beta: 0.5, groupSize: 4, steps: 10, interval: 5, batchSize: 4, seqLen: 128, lr: 2e-3, distillChapters: 10, validationFraction: 0.1 },
    tasks: [
      { task: 'email-lm', tuning: tuning({ steps: 8, batchSize: 4, seqLen: 128 }), evalExamples: 32 },
      { task: 'ham-spam', tuning: tuning({ steps: 8, batchSize: 4, seqLen: 256, lr: 5e-3 }), evalExamples: 32 },
    ],
    evalBatchSize: 8,
  },
};

export function demoBudget(quick: boolean): DemoBudget {
  return DEMO_BUDGETS[quick ? 'quick' : 'normal'];
}
