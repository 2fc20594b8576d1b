// `window.offsite` is the only way out of the page: the preload (or the e2e bridge) puts it there,
// built from the IPC contract. Its type comes from the contract, type-only.
import type { OffsiteApi } from '../../electron/ipc/contract';

declare global {
  interface Window {
    readonly offsite: OffsiteApi;
  }
}

export {};
