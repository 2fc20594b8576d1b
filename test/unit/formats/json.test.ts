import { describe, expect, it } from 'vitest';
import { findDuplicateKey, parseStrictJsonObject } from '../../../native-models/formats/json';
import { FormatError } from '../../../native-models/formats/errors';

const opts = { what: 'test.json', rulePrefix: 'test' };

describe('duplicate-key detector', () => {
  it('finds duplicates at the top level and in nested objects, with their path', () => {
    expect(findDuplicateKey('{"a":1,"b":2,"a":3}')).toEqual({ path: '/', key: 'a' });
    expect(findDuplicateKey('{"x":{"k":1,"k":2}}')).toEqual({ path: '/x', key: 'k' });
    expect(findDuplicateKey('{"x":[{"k":1},{"k":2,"j":0,"k":3}]}')).toEqual({ path: '/x/1', key: 'k' });
  });

  it('compares keys after unescaping', () => {
    expect(findDuplicateKey('{"ab":1,"\\u0061b":2}')).toEqual({ path: '/', key: 'ab' });
  });

  it('does not confuse values, braces inside strings or sibling objects with keys', () => {
    expect(findDuplicateKey('{"a":"a","b":{"a":1},"c":{"a":2}}')).toBeUndefined();
    expect(findDuplicateKey('{"a":"{\\"a\\":1,\\"a\\":2}","b":["a","a"]}')).toBeUndefined();
    expect(findDuplicateKey('{"a\\\\":1,"a":2}')).toBeUndefined();
    expect(findDuplicateKey('{"weight_map":{"x":"s1","y":"s1"}}')).toBeUndefined();
  });
});

describe('parseStrictJsonObject', () => {
  const rule = (text: string): string => {
    try {
      parseStrictJsonObject(text, opts);
    } catch (e) {
      return (e as FormatError).rule;
    }
    return 'accepted';
  };
  it('names the broken rule', () => {
    expect(rule('{"a":1}')).toBe('accepted');
    expect(rule('{"a":1,"a":1}')).toBe('test.duplicate-key');
    expect(rule('[1]')).toBe('test.not-object');
    expect(rule('null')).toBe('test.not-object');
    expect(rule('{"a":')).toBe('test.not-json');
    expect(rule(`{"a":${'['.repeat(100)}${']'.repeat(100)}}`)).toBe('test.too-deep');
  });
});
