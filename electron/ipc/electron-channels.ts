// The two Electron IPC channel names under which the contract travels: all requests go through
// one ipcMain.handle (the gateway sorts them by contract channel), all events through one
// webContents.send. Shared by main and preload so the names cannot drift apart.
export const INVOKE_CHANNEL = 'offsite:invoke';
export const EVENT_CHANNEL = 'offsite:event';
