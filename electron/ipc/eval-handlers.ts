// Handlers of the eval.* channels (see eval-contract.ts). handlers.ts spreads them into the one
// handler map. Each evaluation runs in a worker thread (services/evaluations.ts); its progress goes
// to the renderer as job.progress / job.finished events with kind "eval".
import type { EvalResponses } from './eval-contract';
import type { Handlers, Services } from './handlers';
import { EvaluationsService } from '../services/evaluations';
import { getDataset } from '../services/datasets';
import { importedPackagePath } from '../services/packages';
import { sessionSettingsOf } from '../services/settings';

type EvalChannel = keyof EvalResponses;

export function createEvalHandlers(services: Services): Pick<Handlers, EvalChannel> {
  const evals = new EvaluationsService(services.home, {
    audit: () => services.audit,
    settings: () => sessionSettingsOf(services.settings.get()),
    events: {
      progress: (id, p) =>
        services.events.emit('job.progress', {
          jobId: id,
          kind: 'eval',
          step: p.done,
          total: p.total !== null && p.total > 0 ? p.total : null,
          message: p.message,
          metrics: {},
        }),
      finished: (id, outcome, message) => services.events.emit('job.finished', { jobId: id, kind: 'eval', outcome, message }),
    },
  });
  return {
    'eval.run': async ({ dataset, model, emulator, emulatorId, adapter, ...rest }) => {
      const d = getDataset(services.home, dataset);
      const emulatorPath = emulatorId !== undefined ? importedPackagePath(services.home, 'emulator', emulatorId) : emulator;
      return evals.start({
        ...(model !== undefined ? { model } : {}),
        ...(emulatorPath !== undefined ? { emulator: emulatorPath } : {}),
        adapter: adapter ?? null,
        data: d.path,
        taskName: d.name,
        ...rest,
      });
    },
    'eval.cancel': ({ id }) => evals.cancel(id),
    'eval.list': () => evals.list(),
    'eval.table': () => evals.table(),
  };
}
