// Canonical JSON: the one byte form that audit hashes and signatures are computed over.
// Object keys sorted by UTF-16 code units, no whitespace, strings and numbers as JSON.stringify
// writes them (this matches RFC 8785 for the values we allow). Anything JSON cannot carry
// faithfully (undefined inside arrays, NaN, Infinity, bigint, functions, class instances) is refused
// rather than silently changed, because a hash over silently changed data proves nothing.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, where: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`Canonical JSON cannot hold ${value} (at ${where}).`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new TypeError(`Canonical JSON cannot hold a ${typeof value} (at ${where}).`);
  }
  if (Array.isArray(value)) {
    return `[${value
      .map((item, i) => {
        if (item === undefined) throw new TypeError(`Canonical JSON cannot hold undefined (at ${where}[${i}]).`);
        return write(item, `${where}[${i}]`);
      })
      .join(',')}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`Canonical JSON holds only plain objects, not a ${proto?.constructor?.name ?? 'class instance'} (at ${where}).`);
  }
  const record = value as Record<string, unknown>;
  // Keys whose value is undefined are left out, as JSON.stringify does: "not given" has one form.
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${write(record[k], `${where}.${k}`)}`).join(',')}}`;
}
