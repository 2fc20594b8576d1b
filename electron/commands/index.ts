// Registry of `offsite` commands. Add a command by writing electron/commands/<name>.ts and
// listing it here; names must be unique (checked at start-up by cli.ts).
import type { Command } from './types';
import { infoCommand } from './info';

export const commands: Command[] = [infoCommand];
