// Handlers of the audit.* and keys.* channels (see audit-contract.ts). handlers.ts spreads them
// into the one handler map. They only translate between the contract and the services.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditResponses, GeneratedKeyInfo, TrustedKeyInfo } from './audit-contract';
import type { Handlers, Services } from './handlers';
import { exportCompanions } from '../audit/export-format';
import { generateKey, parsePublicKey, readPublicKey, trustKey, trustKeyFile, type TrustedKey } from '../services/keys';
import { ServiceError } from '../services/service-error';

type AuditChannel = keyof AuditResponses;

const keyInfo = (k: TrustedKey): TrustedKeyInfo => ({ keyId: k.keyId, label: k.label, publicKey: k.publicKey, addedAt: k.addedAt, addedSeq: k.addedSeq });

/** The folder must exist already: a typo must not silently create folders on a removable drive. */
function checkNewFile(path: string, what: string): void {
  const folder = dirname(path);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new ServiceError(`The folder ${folder} does not exist; create it first or choose another folder for the ${what}.`);
  }
}

export function createAuditHandlers(services: Services): Pick<Handlers, AuditChannel> {
  return {
    'audit.source': () => services.auditView.source(),
    'audit.log': (request) => services.auditView.page(request),
    'audit.event': ({ seq }) => services.auditView.event(seq),
    'audit.verify': ({ trust }) => services.auditView.verify({ trust }),
    'audit.export': ({ out }) => {
      checkNewFile(out, 'export');
      const companions = exportCompanions(out);
      for (const p of [out, companions.html, companions.checkpoint]) {
        if (existsSync(p)) throw new ServiceError(`${p} already exists; choose another file name so an earlier export is not overwritten.`);
      }
      const r = services.audit.export({ out });
      const c = r.checkpoint.checkpoint;
      return { json: r.json, html: r.html, checkpointFile: r.checkpointFile, size: c.size, headHash: c.head_hash, keyId: c.key_id, ok: r.report.ok, verdict: r.report.verdict, seq: r.seq };
    },
    'audit.open': ({ path }) => services.auditView.open(path),
    'audit.close': () => services.auditView.leave(),

    'keys.list': () => services.audit.trustedKeys().map(keyInfo),
    'keys.trust': ({ path, publicKey, label }) => {
      const audit = services.audit;
      // Parse first, so "already trusted" is known before anything is written.
      const info = path !== undefined ? readPublicKey(path) : parsePublicKey(publicKey ?? '', 'The pasted key');
      const existing = audit.trustedKeys().find((k) => k.keyId === info.keyId);
      if (existing) return { key: keyInfo(existing), added: false };
      const key = path !== undefined ? trustKeyFile(audit, path, label) : trustKey(audit, info.pem, label?.trim() || info.keyId);
      return { key: keyInfo(key), added: true };
    },
    'keys.untrust': ({ keyId }) => {
      const audit = services.audit;
      if (!audit.isTrusted(keyId)) throw new ServiceError(`No trusted key has the id ${keyId}; it may have been removed already.`);
      const { seq } = audit.removeTrustedKey(keyId);
      return { keyId, seq };
    },
    'keys.generate': ({ out, trust, label }): GeneratedKeyInfo => {
      checkNewFile(out, 'key');
      const audit = services.audit;
      const g = generateKey(audit, out);
      let trusted: TrustedKeyInfo | null = null;
      if (trust !== false) {
        const pem = readPublicKey(g.publicPath).pem;
        trusted = keyInfo(trustKey(audit, pem, label?.trim() || `key generated ${new Date().toISOString().slice(0, 10)}`, 'generated on this workstation'));
      }
      return { keyId: g.keyId, privateKey: g.privatePath, publicKey: g.publicPath, seq: g.seq, trusted };
    },
  };
}
