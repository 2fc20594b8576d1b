// A model the engine cannot build (unknown model_type, unsupported option, missing weight): the
// CLI reports it as bad input (exit 2) with this sentence.
export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
}
