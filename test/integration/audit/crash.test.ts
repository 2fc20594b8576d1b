// kill -9 during writing loses no acknowledged event: 30 writer processes, each killed with SIGKILL
// at a random moment (some during start-up and migration, most mid-append), all on one database.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openAudit, verifyAuditDatabase } from '../../../electron/services/audit';
import { tempHome } from '../../unit/audit/helpers';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const writerScript = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const RUNS = 30;

// A small seeded generator, so a failure can be replayed: the seed is in every assertion message.
const seed = Number(process.env.AUDIT_CRASH_SEED ?? Date.now() % 1_000_000);
let state = seed;
const random = () => {
  state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
  return state / 2_147_483_648;
};

interface Outcome {
  acked: Array<{ seq: number; hash: string }>;
  ready: boolean;
}

function runAndKill(home: string, label: string, killEarly: boolean, delayMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writerScript, home, label], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    let ready = false;
    let stderr = '';
    const acked: Outcome['acked'] = [];
    const kill = () => child.kill('SIGKILL');
    if (killEarly) setTimeout(kill, delayMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      // Only complete lines count as acknowledged; a line cut by the kill does not.
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line === 'ready') {
          ready = true;
          if (!killEarly) setTimeout(kill, delayMs);
          continue;
        }
        const [seq, hash] = line.split(' ');
        acked.push({ seq: Number(seq), hash: hash! });
      }
    });
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer ended by itself (code ${code}): ${stderr}`));
      else resolve({ acked, ready });
    });
  });
}

describe('audit log under kill -9', () => {
  const { home, cleanup } = tempHome('crash');
  afterAll(() => cleanup());
  const dbPath = join(home, 'audit.sqlite');

  it(`keeps every acknowledged event across ${RUNS} SIGKILLs, with integrity ok and the chain intact`, async () => {
    let totalAcked = 0;
    let runsWithAcks = 0;
    for (let run = 0; run < RUNS; run++) {
      const killEarly = run % 5 === 1;
      const delay = Math.floor(killEarly ? random() * 700 : random() * 150);
      const where = `(seed ${seed}, run ${run}, ${killEarly ? 'from spawn' : 'after ready'} +${delay} ms)`;
      const { acked } = await runAndKill(home, String(run), killEarly, delay);
      totalAcked += acked.length;
      if (acked.length > 0) runsWithAcks++;
      if (!existsSync(dbPath)) {
        expect(acked, where).toEqual([]);
        continue;
      }
      const db = new Database(dbPath, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true }), where).toBe('ok');
        const lookup = db.prepare('SELECT hash FROM audit_events WHERE seq = ?');
        for (const a of acked) expect((lookup.get(a.seq) as { hash: string } | undefined)?.hash, `seq ${a.seq} ${where}`).toBe(a.hash);
      } finally {
        db.close();
      }
      const report = verifyAuditDatabase(dbPath);
      expect(report.problems, where).toEqual([]);
      if (acked.length > 0) expect(report.size, where).toBeGreaterThanOrEqual(acked[acked.length - 1]!.seq);
    }
    // The test means something only if most writers got to write before they died.
    expect(runsWithAcks, `seed ${seed}`).toBeGreaterThanOrEqual(RUNS / 2);
    expect(totalAcked).toBeGreaterThan(RUNS);

    // The app opens the crashed database (integrity check on open) and carries on the chain.
    const audit = openAudit(home);
    try {
      const before = verifyAuditDatabase(dbPath).size;
      expect(audit.append('run.failed', { reason: 'writer was killed' }).seq).toBe(before + 1);
      expect(audit.verify().ok).toBe(true);
    } finally {
      audit.close();
    }
  });
});
