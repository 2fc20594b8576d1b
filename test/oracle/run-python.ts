// Runs a Python oracle script with /usr/bin/python3: JSON on stdin, JSON on stdout, typed arrays as
// {dtype, shape, b64} with little-endian bytes (see torch_util.py). The peer's environment drops
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE so OpenBLAS picks its native kernels (ENGINE-NOTES.md).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';

export interface WireTensor {
  dtype: 'float32' | 'float64' | 'int64' | 'int32';
  shape: number[];
  b64: string;
}

export type Numeric = Float32Array | Float64Array | BigInt64Array | Int32Array;

export function encodeTensor(data: Numeric, shape: number[]): WireTensor {
  const dtype = data instanceof Float32Array ? 'float32' : data instanceof Float64Array ? 'float64' : data instanceof BigInt64Array ? 'int64' : 'int32';
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`encodeTensor: ${data.length} values for shape ${JSON.stringify(shape)}`);
  // Typed arrays are little-endian on every platform Node supports for this app.
  return { dtype, shape, b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
}

export function isWireTensor(x: unknown): x is WireTensor {
  return typeof x === 'object' && x !== null && 'b64' in x && 'dtype' in x && 'shape' in x;
}

export function decodeTensor(t: WireTensor): { data: Numeric; shape: number[] } {
  const buf = Buffer.from(t.b64, 'base64');
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const ctor = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array }[t.dtype];
  return { data: new ctor(bytes.buffer), shape: t.shape };
}

/** Decoded tensors' data, keyed like `obj` (one level). */
export function decodeRecord(obj: Record<string, WireTensor>): Record<string, Numeric> {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, decodeTensor(v).data]));
}

export function pythonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export interface RunPythonOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs `script` (a path or file URL) with `input` as JSON on stdin; resolves with its JSON output. */
export function runPython<T = unknown>(script: string | URL, input: unknown, opts: RunPythonOptions = {}): Promise<T> {
  const path = script instanceof URL ? fileURLToPath(script) : script;
  return new Promise<T>((resolve, reject) => {
    const child = spawn(PYTHON, [path], { env: pythonEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`Could not start ${PYTHON}: ${e.message}. Install python3 and python3-torch.`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      if (code !== 0) {
        reject(new Error(`${path} failed (${signal ?? `exit code ${code}`}): ${stderr.slice(-4000)}`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as T);
      } catch (e) {
        reject(new Error(`${path} did not print one JSON object: ${(e as Error).message}; stderr: ${stderr.slice(-2000)}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}
