// Handlers of the demo.* channels (see demo-contract.ts). handlers.ts spreads them into the one
// handler map. The demo runs as a DemoJobs job (services/demo-jobs.ts) of this Services instance,
// with the execution provider and threads from Settings; it keeps its own data folder inside the
// output folder (as `offsite demo` does), so it never touches this workstation's trusted keys.
import type { DemoResponses } from './demo-contract';
import type { Handlers, Services } from './handlers';
import { DemoJobs, suggestedDemoFolder } from '../services/demo-jobs';

type DemoChannel = keyof DemoResponses;

/** The demo jobs of one Services instance (one data folder), kept for the life of the app. */
const jobsOf = new WeakMap<Services, DemoJobs>();
export function demoJobs(services: Services): DemoJobs {
  let j = jobsOf.get(services);
  if (!j) {
    j = new DemoJobs(services.events, () => {
      const s = services.settings.get();
      return { provider: s.executionProvider, threads: s.threads === 'auto' ? null : s.threads };
    });
    jobsOf.set(services, j);
  }
  return j;
}

export function createDemoHandlers(services: Services): Pick<Handlers, DemoChannel> {
  return {
    'demo.defaults': () => ({ out: suggestedDemoFolder(services.home) }),
    'demo.start': (req) => demoJobs(services).start(req),
    'demo.cancel': ({ jobId }) => ({ jobId, cancelled: demoJobs(services).cancel(jobId) }),
    'demo.status': ({ jobId }) => demoJobs(services).status(jobId),
  };
}

/** Cancels a running demo of this data folder and waits for it to end (app quit, end of a test). */
export async function stopDemos(services: Services): Promise<void> {
  await jobsOf.get(services)?.stop();
}
