// The four data formats of CLI.md, one record per JSONL line or CSV row, validated strictly: each
// problem becomes a sentence naming the line and what to change. Nothing is skipped silently.
import { findDuplicateKey } from '../formats/json';

export const DATA_FORMATS = ['text', 'tokens', 'instruction', 'choice'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

export type DataRecord =
  /** Language modelling. */
  | { format: 'text'; line: number; text: string }
  /** Pre-tokenized: used exactly as given, no BOS/EOS added. */
  | { format: 'tokens'; line: number; tokens: number[] }
  /** Alpaca-style instruction tuning; `input` is null when absent or empty. */
  | { format: 'instruction'; line: number; instruction: string; input: string | null; output: string }
  /** Multiple choice: `label` is the index of the correct choice. */
  | { format: 'choice'; line: number; context: string; choices: string[]; label: number };

/** The fields each format reads (others on a line are allowed and ignored; the summary lists them). */
export const FORMAT_FIELDS: Record<DataFormat, readonly string[]> = {
  text: ['text'],
  tokens: ['tokens'],
  instruction: ['instruction', 'input', 'output'],
  choice: ['context', 'choices', 'label'],
};

/** How each format is shown to users. */
export const FORMAT_LABELS: Record<DataFormat, string> = {
  text: 'text ({"text": …})',
  tokens: 'pre-tokenized ({"tokens": [ids…]})',
  instruction: 'instruction ({"instruction", "input"?, "output"})',
  choice: 'multiple choice ({"context", "choices", "label"})',
};

const KNOWN_FIELDS = new Set(Object.values(FORMAT_FIELDS).flat());

export interface RecordOptions {
  /** Token ids must be below this (the tokenizer's vocabulary size), when known. */
  vocabSize?: number;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };
const bad = (message: string): { ok: false; message: string } => ({ ok: false, message });

/** Parses one JSONL line into an object, refusing arrays, scalars and duplicate keys. */
export function parseJsonLine(text: string, line: number): Checked<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message.replace(/\.$/, '');
    return bad(`Line ${line} is not valid JSON (${why}); each line must be one complete JSON object.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const what = Array.isArray(value) ? 'a JSON array' : value === null ? 'null' : `a ${typeof value}`;
    return bad(`Line ${line} is ${what}, not a JSON object; write one object per line, such as {"text": "…"} (a file holding one big JSON array must be converted to JSON Lines).`);
  }
  const dup = findDuplicateKey(text);
  if (dup) return bad(`Line ${line} has the key "${dup.key}" twice; keep only one.`);
  return { ok: true, value: value as Record<string, unknown> };
}

/** Which format a line's fields belong to. Mixing two formats on one line is an error. */
export function formatOfFields(keys: readonly string[], line: number): Checked<DataFormat> {
  const claimed = DATA_FORMATS.filter((f) => FORMAT_FIELDS[f].some((k) => keys.includes(k) && !(f === 'instruction' && k === 'input')));
  // "input" alone says instruction format only when nothing else claims the line.
  if (claimed.length === 0 && keys.includes('input')) claimed.push('instruction');
  if (claimed.length === 1) return { ok: true, value: claimed[0]! };
  if (claimed.length === 0) {
    const seen = keys.length === 0 ? 'no fields' : `only ${keys.map((k) => `"${k}"`).join(', ')}`;
    return bad(
      `Line ${line} has ${seen}; it needs "text", "tokens", "instruction" and "output", or "context", "choices" and "label" (see the data formats in the user guide).`,
    );
  }
  const parts = claimed.map((f) => FORMAT_FIELDS[f].filter((k) => keys.includes(k)).map((k) => `"${k}"`).join('/'));
  return bad(`Line ${line} mixes fields of different formats (${parts.join(' and ')}); each line must use one format.`);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return 'text';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return `a ${typeof v}`;
}

function has(o: Record<string, unknown>, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function requiredText(o: Record<string, unknown>, k: string, line: number, allowEmpty: boolean): Checked<string> {
  if (!has(o, k)) return bad(`Line ${line} has no "${k}" field; add it.`);
  const v = o[k];
  if (typeof v !== 'string') return bad(`Line ${line}: "${k}" must be text, but it is ${typeName(v)}.`);
  if (!allowEmpty && v.trim() === '') return bad(`Line ${line}: "${k}" is empty; give it some text or remove the line.`);
  return { ok: true, value: v };
}

/** Validates the fields of one object (from JSON or a CSV row already converted) as `format`. */
export function validateRecord(format: DataFormat, o: Record<string, unknown>, line: number, options: RecordOptions = {}): Checked<DataRecord> {
  switch (format) {
    case 'text': {
      const text = requiredText(o, 'text', line, false);
      return text.ok ? { ok: true, value: { format, line, text: text.value } } : text;
    }
    case 'tokens': {
      const t = o.tokens;
      if (!Array.isArray(t)) return bad(`Line ${line}: "tokens" must be a list of token ids such as [1, 2, 3], but it is ${typeName(t)}.`);
      if (t.length === 0) return bad(`Line ${line}: "tokens" is an empty list; give at least one token id or remove the line.`);
      for (let i = 0; i < t.length; i++) {
        const x = t[i];
        if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
          return bad(`Line ${line}: "tokens"[${i}] is ${typeof x === 'number' ? x : typeName(x)}; token ids must be whole numbers ≥ 0.`);
        }
        if (options.vocabSize !== undefined && x >= options.vocabSize) {
          return bad(`Line ${line}: "tokens"[${i}] is ${x}, outside the tokenizer's vocabulary (ids 0 to ${options.vocabSize - 1}); use ids of the model's tokenizer.`);
        }
      }
      return { ok: true, value: { format, line, tokens: t as number[] } };
    }
    case 'instruction': {
      const instruction = requiredText(o, 'instruction', line, false);
      if (!instruction.ok) return instruction;
      const output = requiredText(o, 'output', line, false);
      if (!output.ok) return output;
      let input: string | null = null;
      if (has(o, 'input') && o.input !== null) {
        if (typeof o.input !== 'string') return bad(`Line ${line}: "input" must be text (or left out), but it is ${typeName(o.input)}.`);
        input = o.input.trim() === '' ? null : o.input;
      }
      return { ok: true, value: { format, line, instruction: instruction.value, input, output: output.value } };
    }
    case 'choice': {
      const context = requiredText(o, 'context', line, true);
      if (!context.ok) return context;
      if (!has(o, 'choices')) return bad(`Line ${line} has no "choices" field; add the list of answer choices.`);
      const c = o.choices;
      if (!Array.isArray(c)) return bad(`Line ${line}: "choices" must be a list of texts such as ["yes", "no"], but it is ${typeName(c)}.`);
      if (c.length < 2) return bad(`Line ${line}: "choices" has ${c.length} choice${c.length === 1 ? '' : 's'}; a multiple-choice line needs at least 2.`);
      for (let i = 0; i < c.length; i++) {
        if (typeof c[i] !== 'string') return bad(`Line ${line}: "choices"[${i}] must be text, but it is ${typeName(c[i])}.`);
        if ((c[i] as string).trim() === '') return bad(`Line ${line}: "choices"[${i}] is empty; every choice needs some text.`);
      }
      if (!has(o, 'label')) return bad(`Line ${line} has no "label" field; add the index of the correct choice (0 for the first).`);
      const l = o.label;
      if (typeof l !== 'number' || !Number.isInteger(l)) return bad(`Line ${line}: "label" must be a whole number (the index of the correct choice), but it is ${typeof l === 'number' ? l : typeName(l)}.`);
      if (l < 0 || l >= c.length) return bad(`Line ${line}: "label" is ${l}, but there are ${c.length} choices (indices 0 to ${c.length - 1}); set it to the index of the correct choice.`);
      return { ok: true, value: { format, line, context: context.value, choices: c as string[], label: l } };
    }
  }
}

/** Fields on a line that no format reads (kept out of training; listed in the summary). */
export function extraFields(keys: readonly string[]): string[] {
  return keys.filter((k) => !KNOWN_FIELDS.has(k));
}

/**
 * Converts one CSV row (cells by header name) into the object a JSONL line would hold: list
 * fields ("tokens", "choices") are written in their cell as JSON lists, "label" as a whole number,
 * and an empty "input" cell means no input.
 */
export function csvRowToObject(header: readonly string[], cells: readonly string[], line: number): Checked<Record<string, unknown>> {
  if (cells.length !== header.length) {
    return bad(`Line ${line} has ${cells.length} field${cells.length === 1 ? '' : 's'} but the header has ${header.length}; check for a missing or extra comma, or quote fields that contain commas.`);
  }
  const o: Record<string, unknown> = {};
  for (let i = 0; i < header.length; i++) {
    const name = header[i]!;
    const cell = cells[i]!;
    if (name === 'tokens' || name === 'choices') {
      const example = name === 'tokens' ? '"[1, 2, 3]"' : '"[""yes"", ""no""]"';
      let v: unknown;
      try {
        v = JSON.parse(cell);
      } catch {
        return bad(`Line ${line}: the "${name}" cell must be a JSON list such as ${example}.`);
      }
      o[name] = v;
    } else if (name === 'label') {
      const t = cell.trim();
      if (!/^-?\d+$/.test(t)) return bad(`Line ${line}: "label" must be a whole number (the index of the correct choice), but it is "${cell}".`);
      o[name] = Number(t);
    } else if (name === 'input' && cell === '') {
      // An empty input cell means "no input", as an empty string does in Alpaca JSON.
    } else o[name] = cell;
  }
  return { ok: true, value: o };
}

/** Checks a CSV header row: names present, none repeated, one format. */
export function checkCsvHeader(cells: readonly string[], line: number): Checked<{ header: string[]; format: DataFormat }> {
  const header = cells.map((c) => c.trim());
  const empty = header.findIndex((h) => h === '');
  if (empty !== -1) return bad(`Line ${line} (the header) has an empty column name in column ${empty + 1}; every column needs a name such as "text".`);
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) return bad(`Line ${line} (the header) names the column "${h}" twice; keep only one.`);
    seen.add(h);
  }
  const format = formatOfFields(header, line);
  if (!format.ok) return bad(format.message.replace(`Line ${line} has`, `Line ${line} (the header) has`).replace(`Line ${line} mixes`, `Line ${line} (the header) mixes`));
  return { ok: true, value: { header, format: format.value } };
}
