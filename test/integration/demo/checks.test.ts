// The three claims the demo's table prints (demoChecks): Plug-in beats Full ZS, Emu FT stays below
// Plug-in, Plug-in within the stated margin of Full FT — for perplexity (lower is better) and
// accuracy (higher is better), on hand-made tables whose verdicts are known.
import { describe, expect, it } from 'vitest';
import { DEMO_UTILITY_MARGIN } from '../../../native-models/demo/pipeline-config';
import { demoChecks, formatTaskTable, type TaskTable } from '../../../electron/services/demo';

const ppl = (table: TaskTable['table']) => ({ metric: 'ppl' as const, higherIsBetter: false, table });
const acc = (table: TaskTable['table']) => ({ metric: 'acc' as const, higherIsBetter: true, table });

describe('demoChecks', () => {
  it('states the margin before any numbers: 10% of Full FT perplexity, 0.05 accuracy', () => {
    expect(DEMO_UTILITY_MARGIN).toEqual({ pplRelative: 0.1, accAbsolute: 0.05 });
  });

  it('perplexity: lower is better, the margin is relative to Full FT', () => {
    const good = demoChecks(ppl({ fullZS: 24, emuZS: 40, emuFT: 20, plugin: 15, fullFT: 14 }));
    expect(good).toMatchObject({ pluginBeatsFullZS: true, emuFTBelowPlugin: true, pluginNearFullFT: true });
    // 15.5 is 10.7% above 14: outside; Emu FT 15 beats Plug-in 15.5: privacy fails.
    const bad = demoChecks(ppl({ fullZS: 24, emuZS: 26, emuFT: 15, plugin: 15.5, fullFT: 14 }));
    expect(bad).toMatchObject({ pluginBeatsFullZS: true, emuFTBelowPlugin: false, pluginNearFullFT: false });
    expect(demoChecks(ppl({ fullZS: 10, emuZS: 12, emuFT: 13, plugin: 11, fullFT: 9 })).pluginBeatsFullZS).toBe(false);
  });

  it('accuracy: higher is better, the margin is absolute', () => {
    const c = demoChecks(acc({ fullZS: 0.5, emuZS: 0.5, emuFT: 0.6, plugin: 0.7, fullFT: 0.74 }));
    expect(c).toMatchObject({ pluginBeatsFullZS: true, emuFTBelowPlugin: true, pluginNearFullFT: true });
    expect(demoChecks(acc({ fullZS: 0.5, emuZS: 0.5, emuFT: 0.72, plugin: 0.7, fullFT: 0.76 }))).toMatchObject({ emuFTBelowPlugin: false, pluginNearFullFT: false });
    expect(demoChecks(acc({ fullZS: 0.5, emuZS: 0.5, emuFT: 0.5, plugin: 0.5, fullFT: 0.5 })).pluginBeatsFullZS).toBe(false);
  });

  it('the printed table carries each verdict', () => {
    const t = { ...acc({ fullZS: 0.5, emuZS: 0.5, emuFT: 0.72, plugin: 0.7, fullFT: 0.76 }), task: 'ham-spam', testExamples: 200, gaps: { utility: 0.06, privacy: -0.02 }, scores: { fullZS: { acc_norm: 0.5 }, emuZS: { acc_norm: 0.5 }, emuFT: { acc_norm: 0.7 }, plugin: { acc_norm: 0.7 }, fullFT: { acc_norm: 0.7 } } } as unknown as TaskTable;
    const text = formatTaskTable(t);
    expect(text).toMatch(/Plug-in better than Full ZS: yes; Emu FT worse than Plug-in: NO; Plug-in behind Full FT by 0\.0600, within the stated margin \(0\.05 of Full FT's acc\): NO\./);
  });
});
