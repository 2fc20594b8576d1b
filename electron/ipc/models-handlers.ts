// Handlers of the models.* and generate.* channels (see models-contract.ts). handlers.ts spreads
// them into the one handler map. models.inspect is `offsite inspect`; each generation runs in a
// worker thread (services/generation.ts) with the execution provider and threads from Settings,
// its tokens going to the renderer as job.progress / job.finished events with kind "generate".
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { describePath } from '../../native-models/formats/describe';
import { FormatError } from '../../native-models/formats/errors';
import type { ModelsResponses } from './models-contract';
import type { Handlers, Services } from './handlers';
import { GenerationService, type GenerationView } from '../services/generation';
import { ServiceError } from '../services/service-error';
import { sessionSettingsOf } from '../services/settings';

type ModelsChannel = keyof ModelsResponses;

/** What `offsite inspect PATH` describes; malformed input is a ServiceError with the reader's one-line reason. */
export async function inspectPath(path: string): Promise<ModelsResponses['models.inspect']> {
  if (!isAbsolute(path) || !existsSync(path)) {
    throw new ServiceError(`There is nothing at ${path}; give the full path of a model folder, a .safetensors file, a llama2.c .bin checkpoint, a PEFT adapter folder or a package.`);
  }
  try {
    return await describePath(path);
  } catch (e) {
    if (e instanceof FormatError) throw new ServiceError(e.message);
    throw e;
  }
}

const KIND = 'generate';

function progressOf(v: GenerationView, stage: 'started' | 'tokens') {
  return {
    jobId: v.id,
    kind: KIND,
    stage,
    step: v.tokens.length,
    total: v.maxNewTokens,
    message: stage === 'started' ? v.message : `${v.tokens.length} of ${v.maxNewTokens} tokens`,
    metrics: {},
    series: { tokens: v.tokens },
    ...(v.text !== null ? { text: v.text } : {}),
  };
}

/** The generations of one Services instance, kept for the life of the app. */
const generationsOf = new WeakMap<Services, GenerationService>();
export function generations(services: Services): GenerationService {
  let g = generationsOf.get(services);
  if (!g) {
    g = new GenerationService({
      settings: () => sessionSettingsOf(services.settings.get()),
      events: {
        started: (v) => services.events.emit('job.progress', progressOf(v, 'started')),
        tokens: (v) => services.events.emit('job.progress', progressOf(v, 'tokens')),
        finished: (v, outcome) => services.events.emit('job.finished', { jobId: v.id, kind: KIND, outcome, message: v.message }),
      },
    });
    generationsOf.set(services, g);
  }
  return g;
}

export function createModelsHandlers(services: Services): Pick<Handlers, ModelsChannel> {
  return {
    'models.inspect': ({ path }) => inspectPath(path),
    'generate.start': (req) => generations(services).start(req),
    'generate.cancel': ({ id }) => generations(services).cancel(id),
    'generate.status': ({ id }) => generations(services).status(id),
  };
}

/** Cancels the running generation of this data folder and waits for it to end (app quit, end of a test). */
export async function stopGenerations(services: Services): Promise<void> {
  await generationsOf.get(services)?.stop();
}
