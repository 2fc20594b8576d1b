// Child process for crash.test.ts: appends audit events (and metrics) as fast as it can and prints
// "seq hash" for each event only after append() has returned, i.e. after the commit. The parent
// kills it with SIGKILL at a random moment and checks that every printed event survived.
import { writeSync } from 'node:fs';
import { openAudit } from '../../../electron/services/audit';

const [home, runLabel] = process.argv.slice(2);
if (!home || !runLabel) throw new Error('usage: crash-writer.ts HOME RUN_LABEL');

const audit = openAudit(home, { executionProvider: 'cpu', metrics: { maxRows: 8, maxDelayMs: 5 } });
writeSync(1, 'ready\n');
const runId = `crash-${runLabel}`;
for (let i = 0; ; i++) {
  const r = audit.append(i === 0 ? 'run.started' : 'run.step', { runId, details: { i, pid: process.pid } });
  // writeSync: the line reaches the pipe before the next event starts, never buffered behind it.
  writeSync(1, `${r.seq} ${r.hash}\n`);
  audit.recordMetrics(runId, [{ step: i, loss: 1 / (i + 1), lr: 1e-3, selected: [i % 4], importance: [0.25, 0.25, 0.25, 0.25] }]);
}
