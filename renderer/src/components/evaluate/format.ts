// How evaluation numbers are shown: perplexity with 3 decimals, accuracies and exact match as
// percentages with one decimal, gaps with their sign.
import type { EvaluationScoresView, ResultColumn, ResultsTableRow } from '../../../../electron/ipc/contract';

/** The results-table columns in display order (the renderer imports the contract for types only; the Record type keeps this in step with it). */
export const COLUMN_LABELS: Record<ResultColumn, string> = {
  fullZS: 'Full ZS',
  emuZS: 'Emu ZS',
  emuFT: 'Emu FT',
  plugin: 'Plug-in',
  fullFT: 'Full FT',
};
export const COLUMNS = Object.keys(COLUMN_LABELS) as ResultColumn[];

export function formatValue(metric: ResultsTableRow['metric'], v: number): string {
  return metric === 'ppl' ? v.toFixed(3) : `${(v * 100).toFixed(1)}%`;
}

export function formatGap(metric: ResultsTableRow['metric'], v: number | null): string {
  if (v === null) return '—';
  const sign = v > 0 ? '+' : v < 0 ? '−' : '';
  const abs = Math.abs(v);
  return metric === 'ppl' ? `${sign}${abs.toFixed(3)}` : `${sign}${(abs * 100).toFixed(1)} pt`;
}

export function formatScores(metric: 'ppl' | 'mc' | 'em' | null, s: EvaluationScoresView | null): string {
  if (!s || !metric) return '—';
  if (metric === 'ppl') return `perplexity ${s.ppl?.toFixed(3)} (${s.tokens?.toLocaleString('en-US')} tokens)`;
  if (metric === 'mc') return `acc ${formatValue('acc', s.acc ?? 0)}, acc_norm ${formatValue('acc_norm', s.acc_norm ?? 0)} (${s.n} items)`;
  return `exact match ${formatValue('em', s.em ?? 0)} (${s.n} items)`;
}
