import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../electron/audit/canonical';
import { eventHash, GENESIS_HASH } from '../../../electron/audit/chain';

describe('canonicalJson', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
  });

  it('sorts keys by UTF-16 code units, not locale', () => {
    // 'B' (0x42) < 'a' (0x61) < 'é' (0xe9) < '😀' (0xd83d…)
    expect(canonicalJson({ é: 1, a: 2, B: 3, '😀': 4 })).toBe('{"B":3,"a":2,"é":1,"😀":4}');
  });

  it('writes numbers and strings the way JSON does', () => {
    expect(canonicalJson([1, 1.5, -0, 1e21, 0.1, 'q"uote\n', '\u0001'])).toBe('[1,1.5,0,1e+21,0.1,"q\\"uote\\n","\\u0001"]');
  });

  it('leaves out object keys whose value is undefined', () => {
    expect(canonicalJson({ a: undefined, b: 2 })).toBe('{"b":2}');
  });

  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson({ x: NaN })).toThrow(/NaN.*\$\.x/);
    expect(() => canonicalJson([1, Infinity])).toThrow(/Infinity/);
    expect(() => canonicalJson([undefined])).toThrow(/undefined/);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/plain objects/);
    expect(() => canonicalJson({ n: 1n })).toThrow(/bigint/);
  });

  it('gives the same text for the same data regardless of key insertion order', () => {
    const a = { run: 'r1', inputs: { data: 'x', model: 'y' } };
    const b = { inputs: { model: 'y', data: 'x' }, run: 'r1' };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
  });
});

describe('eventHash', () => {
  it('is SHA-256 of prev_hash followed by the canonical row without hash', () => {
    const row = { seq: 1, ts: '2024-01-01T00:00:00.000Z', actor: '{"os":"ann"}', action: 'key.generated', reason: null, payload: '{}', prev_hash: GENESIS_HASH };
    const text =
      GENESIS_HASH +
      '{"action":"key.generated","actor":"{\\"os\\":\\"ann\\"}","payload":"{}","prev_hash":"' +
      GENESIS_HASH +
      '","reason":null,"seq":1,"ts":"2024-01-01T00:00:00.000Z"}';
    expect(eventHash(row)).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('changes when any field changes', () => {
    const row = { seq: 2, ts: 't', actor: '{}', action: 'run.started', reason: null, payload: '{}', prev_hash: 'a'.repeat(64) };
    const base = eventHash(row);
    for (const change of [{ seq: 3 }, { ts: 'u' }, { actor: '{"os":"x"}' }, { action: 'run.failed' }, { reason: 'r' }, { payload: '{"a":1}' }, { prev_hash: 'b'.repeat(64) }]) {
      expect(eventHash({ ...row, ...change })).not.toBe(base);
    }
  });
});
