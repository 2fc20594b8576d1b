// Registry of `offsite` commands. Add a command by writing electron/commands/<name>.ts and
// listing it here; names must be unique (checked at start-up by cli.ts).
import type { Command } from './types';
import { infoCommand } from './info';
import { inspectCommand } from './inspect';
import { auditCommands } from './audit';
import { keygenCommand } from './keygen';
import { demoCommand } from './demo';
import { evalCommand } from './eval';
import { generateCommand } from './generate';
import { tuneCommand } from './tune';
import { emulatorCommands } from './emulator';
import { adapterCommands } from './adapter';
import { datasetCommands } from './dataset';
import { emulatorBuildCommand } from './emulator-build';
import { pluginCommand } from './plugin';
import { tableCommand } from './table';

export const commands: Command[] = [infoCommand, demoCommand, keygenCommand, ...auditCommands, inspectCommand, evalCommand, generateCommand, ...datasetCommands, ...emulatorCommands, emulatorBuildCommand, ...adapterCommands, tuneCommand, pluginCommand, tableCommand];
