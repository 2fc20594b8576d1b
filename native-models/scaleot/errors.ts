/** Thrown between steps when the caller cancelled an emulator build. */
export class BuildCancelled extends Error {
  constructor(readonly step: number) {
    super(`Emulator building was cancelled at step ${step}.`);
    this.name = 'BuildCancelled';
  }
}
