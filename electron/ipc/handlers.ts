// Which service answers which channel. A new feature adds its channels to contract.ts, its
// service to `Services`, and one line per channel here; the compiler checks every channel has a
// handler with the contract's request and response types.
import type { Channel, EventName, EventPayload, ParsedRequest, Response } from './contract';
import { appInfo } from '../services/app-info';
import { createSettingsStore, type SettingsStore, type SettingsStoreOptions } from '../services/settings';

/** Where services push events for the renderer (job progress); main sends them to the window. */
export interface EventSink {
  emit<E extends EventName>(event: E, payload: EventPayload<E>): void;
}

export interface Services {
  /** The data folder. */
  home: string;
  settings: SettingsStore;
  events: EventSink;
}

export interface ServicesOptions {
  events: EventSink;
  onSettingsChange?: SettingsStoreOptions['onChange'];
}

export function createServices(home: string, options: ServicesOptions): Services {
  return { home, settings: createSettingsStore(home, { onChange: options.onSettingsChange }), events: options.events };
}

export type Handlers = {
  [C in Channel]: (request: ParsedRequest<C>) => Response<C> | Promise<Response<C>>;
};

export function createHandlers(services: Services): Handlers {
  return {
    'app.info': () => appInfo(services.home, services.settings.get()),
    'settings.get': () => services.settings.get(),
    'settings.set': (patch) => services.settings.set(patch),
  };
}
