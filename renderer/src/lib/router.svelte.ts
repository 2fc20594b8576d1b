// Hash routing (#/settings): in-page navigation only, so the main process's will-navigate guard
// never has to allow anything.
import { screenById, type ScreenId } from './screens';

function fromHash(hash: string): ScreenId {
  const id = hash.replace(/^#\/?/, '');
  return screenById(id)?.id ?? 'home';
}

class Router {
  current = $state<ScreenId>(fromHash(location.hash));

  constructor() {
    window.addEventListener('hashchange', () => {
      this.current = fromHash(location.hash);
    });
  }
}

export const router = new Router();

export function hrefOf(id: ScreenId): string {
  return `#/${id}`;
}
