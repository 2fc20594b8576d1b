// `offsite inspect PKG` for emulator and adapter packages. Inspect has no trusted keys, so it
// checks everything except trust (manifest, names, links, extra/missing files, hashes, and the
// signature against the key the manifest names) and says who signed; a package that fails any of
// those is malformed (FormatError → exit 2). Trust is `offsite emulator verify --trust`'s job.
// (Imports nothing from describe.ts, which imports this file: keeps module start-up acyclic.)
import type { Detector, Description } from './describe';
import { FormatError } from './errors';
import { MANIFEST_FILE, verifyPackage, type LayerMapEntry, type PackageManifest } from './package';

const bytes = (n: number): string =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 2 ** 10 ? `${(n / 2 ** 10).toFixed(1)} KiB` : `${n} B`;

/** "0-1 adapter, 2 kept-compressed, 3 harmonizer…": runs of equal roles. */
export function layerMapSummary(map: LayerMapEntry[]): string {
  const runs: string[] = [];
  let i = 0;
  while (i < map.length) {
    let j = i;
    while (j + 1 < map.length && map[j + 1]!.role === map[i]!.role) j++;
    runs.push(`${i === j ? i : `${i}-${j}`} ${map[i]!.role}`);
    i = j + 1;
  }
  return runs.join(', ');
}

export const packageDetector: Detector = {
  kind: 'package',
  matches: (_p, st, entries) => st.isDirectory() && !!entries?.includes(MANIFEST_FILE),
  async describe(path) {
    const report = await verifyPackage(path);
    const bad = report.steps.find((s) => s.status === 'failed' && s.name !== 'signer');
    if (bad || !report.manifest) {
      const f = bad ? bad.problems[0]! : report.failure!;
      throw new FormatError(f.rule, `${path}: ${f.message}`, path);
    }
    const m: PackageManifest = report.manifest;
    const common = {
      path,
      kind: `${m.kind}-package`,
      packageKind: m.kind,
      manifestSha256: report.manifestSha256,
      producer: m.producer,
      created: m.created,
      signer: m.signer ? { keyId: m.signer.keyId, signatureValid: report.signer?.signatureValid ?? false } : null,
      trust: 'not checked (use offsite emulator verify --trust PUBKEY)',
      files: m.files,
      totalBytes: report.totalBytes,
      sourceModel: m.sourceModel,
    };
    if (m.kind === 'emulator') {
      const counts: Record<string, number> = {};
      for (const e of m.layerMap) counts[e.role] = (counts[e.role] ?? 0) + 1;
      return { ...common, method: m.method, triplet: m.triplet, layerMap: m.layerMap, layerRoles: counts, emulatorLayers: m.layerMap.filter((e) => e.index !== null).length, model: m.model, recommendedTuning: m.recommendedTuning, reference: m.reference } satisfies Description;
    }
    return { ...common, emulator: m.emulator, adapter: m.adapter, training: m.training ?? null } satisfies Description;
  },
  format(d) {
    const files = d.files as { path: string; size: number; sha256: string }[];
    const signer = d.signer as { keyId: string } | null;
    const lines = [
      `${d.packageKind} package, format version 1, made by ${(d.producer as { app: string; version: string }).app} ${(d.producer as { version: string }).version} on ${d.created}`,
      `manifest sha256 ${d.manifestSha256}; ${signer ? `signed by key ${signer.keyId} (signature valid; trust not checked — use offsite ${d.packageKind} verify --trust PUBKEY)` : 'UNSIGNED'}`,
      `source model sha256 ${(d.sourceModel as { sha256: string }).sha256}`,
    ];
    if (d.packageKind === 'emulator') {
      const t = d.triplet as { adapterLayers: [number, number]; alpha: number; beta: number };
      const map = d.layerMap as LayerMapEntry[];
      lines.push(
        `${d.method} emulator: adapter layers ${t.adapterLayers[0]} + ${t.adapterLayers[1]}, α ${t.alpha}, β ${t.beta}; ${map.length} original layers → ${d.emulatorLayers} emulator blocks`,
        `layer map: ${layerMapSummary(map)}`,
      );
    } else {
      const a = d.adapter as { format: string; layers: number[] };
      lines.push(`${a.format} adapter for layers ${a.layers.join(', ') || 'none named'}; tuned on emulator ${(d.emulator as { manifestSha256: string }).manifestSha256}`);
    }
    lines.push(`${files.length} files, ${bytes(d.totalBytes as number)} (sizes and SHA-256 checked):`);
    for (const f of files.slice(0, 20)) lines.push(`  ${f.path}  ${bytes(f.size)}  ${f.sha256.slice(0, 16)}…`);
    if (files.length > 20) lines.push(`  … and ${files.length - 20} more (--json lists all)`);
    return lines;
  },
};
