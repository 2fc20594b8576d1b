// Serves the built renderer (dist/renderer) by URL path, with the Content-Security-Policy and
// other headers every response carries. Used by the app:// protocol in main.electron.ts and by
// the e2e harness's HTTP server, so the tests run the UI under the very same policy.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export interface RendererResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

function headers(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': 'no-store',
  };
}

function plain(status: number, text: string): RendererResponse {
  return { status, headers: headers('text/plain; charset=utf-8'), body: Buffer.from(text, 'utf8') };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The file for a URL path ("/" is index.html); never anything outside `root`. */
export function readRendererFile(root: string, urlPath: string): RendererResponse {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return plain(400, 'Bad request.');
  }
  if (path.includes('\0') || path.includes('\\')) return plain(400, 'Bad request.');
  if (path === '' || path.endsWith('/')) path += 'index.html';
  const base = resolve(root);
  const file = resolve(base, `.${path.startsWith('/') ? path : `/${path}`}`);
  if (!inside(base, file)) return plain(404, 'Not found.');
  try {
    // realpath: a symlink inside the folder must not lead outside it.
    if (!inside(realpathSync(base), realpathSync(file)) || !statSync(file).isFile()) return plain(404, 'Not found.');
    return { status: 200, headers: headers(MIME[extname(file).toLowerCase()] ?? 'application/octet-stream'), body: readFileSync(file) };
  } catch {
    return plain(404, 'Not found.');
  }
}
