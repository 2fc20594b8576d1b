// Handlers of the datasets.* channels (see datasets-contract.ts). handlers.ts spreads them into the
// one handler map. They only translate between the contract and services/datasets.ts.
import type { DatasetResponses } from './datasets-contract';
import type { Handlers, Services } from './handlers';
import { importDataset, inspectDataset, listDatasets, removeDataset } from '../services/datasets';

type DatasetChannel = keyof DatasetResponses;

export function createDatasetHandlers(services: Services): Pick<Handlers, DatasetChannel> {
  return {
    'datasets.inspect': ({ path, model }) => inspectDataset(path, { model }),
    'datasets.import': ({ path }) => importDataset(services.home, path, { audit: services.audit }),
    'datasets.list': () => listDatasets(services.home),
    'datasets.remove': ({ id }) => removeDataset(services.home, id, { audit: services.audit }),
  };
}
