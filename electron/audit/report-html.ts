// The auditor's printable copy of an export: one self-contained HTML file, no scripts, no external
// resources (its CSP forbids both), print-friendly. It carries the verdict and the signed
// checkpoint; the JSON beside it is what `offsite audit verify --export` checks.
import type { AuditExport } from './export-format';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function actorText(actor: string): string {
  const a = parseJson(actor) as { os?: unknown; app?: unknown };
  if (a && typeof a === 'object' && typeof a.os === 'string') return typeof a.app === 'string' ? `${a.app} (${a.os})` : a.os;
  return actor;
}

function digestList(value: unknown): string {
  if (!value || typeof value !== 'object') return '';
  const items = Object.entries(value as Record<string, unknown>).map(([name, d]) => {
    const sha = typeof d === 'string' ? d : d && typeof d === 'object' && 'sha256' in d ? String((d as { sha256: unknown }).sha256) : JSON.stringify(d);
    return `<div><span class="k">${escapeHtml(name)}</span> <code>${escapeHtml(sha)}</code></div>`;
  });
  return items.join('');
}

const CSS = `
  body { font: 10pt/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111; margin: 2em; }
  h1 { font-size: 16pt; margin: 0 0 .2em; } h2 { font-size: 12pt; margin: 1.4em 0 .4em; }
  .verdict { border: 2px solid; padding: .6em .8em; font-weight: 600; margin: 1em 0; }
  .ok { border-color: #1a7f37; background: #e9f7ee; } .bad { border-color: #b42318; background: #fdecea; }
  table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #bbb; padding: .25em .4em; vertical-align: top; text-align: left; }
  th { background: #f1f1f1; } code, .mono { font: 8pt/1.3 ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
  .k { color: #555; } dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; } dt { color: #555; } dd { margin: 0; }
  pre { white-space: pre-wrap; word-break: break-all; font-size: 8pt; }
  @page { size: A4 landscape; margin: 12mm; }
  @media print { body { margin: 0; } thead { display: table-header-group; } tr { break-inside: avoid; } .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
`;

export function renderAuditReport(ex: AuditExport): string {
  const cp = ex.checkpoints[ex.checkpoints.length - 1];
  const rows = ex.events
    .map((e) => {
      const p = parseJson(e.payload) as Record<string, unknown>;
      const details = p && typeof p === 'object' && p.details && Object.keys(p.details as object).length > 0 ? JSON.stringify(p.details) : '';
      const extra = [
        p?.run_id ? `run ${String(p.run_id)}` : '',
        p?.corrects ? `corrects seq ${String(p.corrects)}` : '',
        p?.execution_provider ? `ep ${String(p.execution_provider)}` : '',
      ]
        .filter(Boolean)
        .join(' · ');
      return `<tr>
  <td>${e.seq}</td><td class="mono">${escapeHtml(e.ts)}</td><td>${escapeHtml(actorText(e.actor))}</td>
  <td><strong>${escapeHtml(e.action)}</strong>${extra ? `<div class="k">${escapeHtml(extra)}</div>` : ''}${e.reason ? `<div>Reason: ${escapeHtml(e.reason)}</div>` : ''}</td>
  <td>${digestList(p?.inputs)}</td><td>${digestList(p?.outputs)}</td>
  <td><code>${escapeHtml(details)}</code></td><td><code>${escapeHtml(e.hash)}</code></td>
</tr>`;
    })
    .join('\n');
  const checkpointBlock = cp
    ? `<dl>
  <dt>Events covered</dt><dd>seq 1–${cp.checkpoint.size}</dd>
  <dt>Head hash</dt><dd><code>${escapeHtml(cp.checkpoint.head_hash)}</code></dd>
  <dt>Signed at</dt><dd>${escapeHtml(cp.checkpoint.time)}</dd>
  <dt>Key id</dt><dd><code>${escapeHtml(cp.checkpoint.key_id)}</code></dd>
  <dt>Signature (Ed25519)</dt><dd><code>${escapeHtml(cp.signature)}</code></dd>
  <dt>Public key</dt><dd><pre>${escapeHtml(cp.public_key)}</pre></dd>
</dl>`
    : '<p>No signed checkpoint.</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Offsite Studio audit report — ${escapeHtml(ex.exported_at)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>Offsite Studio audit report</h1>
<div class="verdict ${ex.verdict.ok ? 'ok' : 'bad'}">${escapeHtml(ex.verdict.text)}</div>
<dl>
  <dt>Exported</dt><dd>${escapeHtml(ex.exported_at)}</dd>
  <dt>App version</dt><dd>${escapeHtml(ex.app_version)}</dd>
  <dt>Machine id</dt><dd><code>${escapeHtml(ex.machine_id)}</code></dd>
  <dt>Events</dt><dd>${ex.chain.size}</dd>
  <dt>Head hash</dt><dd><code>${escapeHtml(ex.chain.head_hash)}</code></dd>
</dl>
<h2>Signed checkpoint</h2>
${checkpointBlock}
<p class="k">To check this report, run <code>offsite audit verify --export FILE.json --trust SIGNER.pub</code> on the JSON export written with it; each event's hash is SHA-256(prev_hash ‖ canonical JSON of the event without its hash).</p>
<h2>Events</h2>
<table>
<thead><tr><th>Seq</th><th>Time</th><th>Actor</th><th>Action</th><th>Inputs</th><th>Outputs</th><th>Details</th><th>Hash</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</body>
</html>
`;
}
