// A failure a user can act on. Services throw it with a full sentence; the IPC gateway passes the
// sentence to the renderer as `{ ok: false, error: { code: 'failed', message } }` and the CLI
// prints it. Anything else a service throws is treated as a bug.
export class ServiceError extends Error {
  override name = 'ServiceError';
}
