// Execution-provider choice: CUDA only when its provider libraries are present and load, else CPU,
// and always say which was chosen and why.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type ProviderRequest = 'auto' | 'cpu' | 'cuda';
export type ProviderName = 'cpu' | 'cuda';

export interface ProviderChoice {
  requested: ProviderRequest;
  chosen: ProviderName;
  /** Execution providers whose libraries are present on this machine. */
  available: ProviderName[];
  /** A sentence saying why this provider was chosen (shown in CLI output, logs and UI). */
  reason: string;
}

const require = createRequire(import.meta.url);

function ortBinaryFolder(): string {
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  const arch = process.arch;
  return join(pkg, 'bin', 'napi-v6', process.platform, arch);
}

/** True when onnxruntime-node's CUDA provider library was installed (ONNXRUNTIME_NODE_INSTALL=cuda12). */
export function cudaLibrariesPresent(): boolean {
  const folder = ortBinaryFolder();
  const names = process.platform === 'win32' ? ['onnxruntime_providers_cuda.dll'] : ['libonnxruntime_providers_cuda.so'];
  return names.some((n) => existsSync(join(folder, n)));
}

export function availableProviders(): ProviderName[] {
  return cudaLibrariesPresent() ? ['cpu', 'cuda'] : ['cpu'];
}

export function chooseProvider(requested: ProviderRequest = 'auto'): ProviderChoice {
  const available = availableProviders();
  const hasCuda = available.includes('cuda');
  if (requested === 'cpu') return { requested, chosen: 'cpu', available, reason: 'CPU requested.' };
  if (hasCuda) return { requested, chosen: 'cuda', available, reason: 'CUDA provider libraries found.' };
  const reason =
    requested === 'cuda'
      ? 'CUDA was requested but its provider libraries are not installed; running on CPU.'
      : 'CUDA provider libraries are not installed; running on CPU.';
  return { requested, chosen: 'cpu', available, reason };
}

export function onnxruntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** Intra-op threads used by default: all cores the OS gives this process. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}
