import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataFileError, readDataFile, scanDataFile } from '../../../native-models/data/read';
import { jsonl, tempFolder } from './helpers';

const tmp = tempFolder();

async function problems(name: string, content: string, vocabSize?: number) {
  const scan = await scanDataFile(tmp.file(name, content), { vocabSize });
  return scan.issues;
}

describe('format detection', () => {
  it('reads each of the four JSONL formats', async () => {
    const text = await scanDataFile(tmp.file('t.jsonl', jsonl([{ text: 'a' }, { text: 'b' }])));
    expect([text.format, text.records, text.issueCount]).toEqual(['text', 2, 0]);
    const tokens = await scanDataFile(tmp.file('k.jsonl', jsonl([{ tokens: [1, 2, 3] }])));
    expect(tokens.preview).toEqual([{ format: 'tokens', line: 1, tokens: [1, 2, 3] }]);
    const instr = await scanDataFile(tmp.file('i.jsonl', jsonl([{ instruction: 'Add', input: '1 1', output: '2' }, { instruction: 'Say hi', output: 'hi' }, { instruction: 'Say', input: '', output: 'x' }])));
    expect(instr.preview).toEqual([
      { format: 'instruction', line: 1, instruction: 'Add', input: '1 1', output: '2' },
      { format: 'instruction', line: 2, instruction: 'Say hi', input: null, output: 'hi' },
      { format: 'instruction', line: 3, instruction: 'Say', input: null, output: 'x' },
    ]);
    const mc = await scanDataFile(tmp.file('m.jsonl', jsonl([{ context: 'Sky is', choices: ['blue', 'green'], label: 0 }])));
    expect(mc.preview).toEqual([{ format: 'choice', line: 1, context: 'Sky is', choices: ['blue', 'green'], label: 0 }]);
  });

  it('refuses mixed formats, naming the first disagreeing line and the line that set the format', async () => {
    const issues = await problems('mixed.jsonl', jsonl([{ text: 'a' }, { text: 'b' }, { instruction: 'x', output: 'y' }, { tokens: [1] }]));
    expect(issues.map((i) => i.line)).toEqual([3, 4]);
    expect(issues[0]!.message).toBe(
      'Line 3 is in the instruction ({"instruction", "input"?, "output"}) format, but line 1 is in the text ({"text": …}) format; a file must use one format throughout.',
    );
  });

  it('refuses a line that mixes fields of two formats, or has none', async () => {
    const issues = await problems('two.jsonl', jsonl([{ text: 'a', tokens: [1] }, { id: 3 }]));
    expect(issues[0]).toEqual({ line: 1, message: 'Line 1 mixes fields of different formats ("text" and "tokens"); each line must use one format.' });
    expect(issues[1]!.line).toBe(2);
    expect(issues[1]!.message).toMatch(/^Line 2 has only "id"; it needs "text", "tokens"/);
  });

  it('lists fields no format reads, and counts blank lines instead of hiding them', async () => {
    const scan = await scanDataFile(tmp.file('extra.jsonl', '{"text":"a","id":1}\n\n{"text":"b","source":"x"}\n  \n'));
    expect(scan.extraFields).toEqual(['id', 'source']);
    expect([scan.records, scan.blankLines, scan.firstBlankLine, scan.issueCount]).toEqual([2, 2, 2, 0]);
  });
});

describe('every malformed line is reported with its number', () => {
  it('bad JSON, non-objects and duplicate keys', async () => {
    const issues = await problems('bad.jsonl', '{"text":"ok"}\n{"text": "no end\n[1,2]\n"str"\n{"text":"a","text":"b"}\n');
    expect(issues.map((i) => i.line)).toEqual([2, 3, 4, 5]);
    expect(issues[0]!.message).toMatch(/^Line 2 is not valid JSON \(.+\); each line must be one complete JSON object\.$/);
    expect(issues[1]!.message).toMatch(/^Line 3 is a JSON array, not a JSON object/);
    expect(issues[2]!.message).toMatch(/^Line 4 is a string, not a JSON object/);
    expect(issues[3]!.message).toBe('Line 5 has the key "text" twice; keep only one.');
  });

  it('missing fields and wrong types', async () => {
    const issues = await problems(
      'types.jsonl',
      jsonl([
        { instruction: 'a', output: 'b' },
        { instruction: 'a' },
        { instruction: 5, output: 'b' },
        { instruction: 'a', input: 3, output: 'b' },
        { instruction: '  ', output: 'b' },
      ]),
    );
    expect(issues).toEqual([
      { line: 2, message: 'Line 2 has no "output" field; add it.' },
      { line: 3, message: 'Line 3: "instruction" must be text, but it is a number.' },
      { line: 4, message: 'Line 4: "input" must be text (or left out), but it is a number.' },
      { line: 5, message: 'Line 5: "instruction" is empty; give it some text or remove the line.' },
    ]);
  });

  it('token ids: not whole numbers, negative, empty list, and out of the tokenizer vocabulary', async () => {
    const issues = await problems('tok.jsonl', jsonl([{ tokens: [1, 2] }, { tokens: [1, 2.5] }, { tokens: [-1] }, { tokens: [] }, { tokens: [3, 258, 259] }, { tokens: '1 2' }]), 259);
    expect(issues).toEqual([
      { line: 2, message: 'Line 2: "tokens"[1] is 2.5; token ids must be whole numbers ≥ 0.' },
      { line: 3, message: 'Line 3: "tokens"[0] is -1; token ids must be whole numbers ≥ 0.' },
      { line: 4, message: 'Line 4: "tokens" is an empty list; give at least one token id or remove the line.' },
      { line: 5, message: 'Line 5: "tokens"[2] is 259, outside the tokenizer\'s vocabulary (ids 0 to 258); use ids of the model\'s tokenizer.' },
      { line: 6, message: 'Line 6: "tokens" must be a list of token ids such as [1, 2, 3], but it is text.' },
    ]);
  });

  it('multiple choice: label out of range, not whole, too few choices', async () => {
    const issues = await problems(
      'mc.jsonl',
      jsonl([
        { context: 'c', choices: ['a', 'b', 'c'], label: 3 },
        { context: 'c', choices: ['a', 'b'], label: -1 },
        { context: 'c', choices: ['a', 'b'], label: 0.5 },
        { context: 'c', choices: ['a'], label: 0 },
        { context: 'c', choices: ['a', 7], label: 0 },
        { context: 'c', choices: ['a', 'b'] },
      ]),
    );
    expect(issues).toEqual([
      { line: 1, message: 'Line 1: "label" is 3, but there are 3 choices (indices 0 to 2); set it to the index of the correct choice.' },
      { line: 2, message: 'Line 2: "label" is -1, but there are 2 choices (indices 0 to 1); set it to the index of the correct choice.' },
      { line: 3, message: 'Line 3: "label" must be a whole number (the index of the correct choice), but it is 0.5.' },
      { line: 4, message: 'Line 4: "choices" has 1 choice; a multiple-choice line needs at least 2.' },
      { line: 5, message: 'Line 5: "choices"[1] must be text, but it is a number.' },
      { line: 6, message: 'Line 6 has no "label" field; add the index of the correct choice (0 for the first).' },
    ]);
  });

  it('an empty file, a file of blank lines, a CSV with a header only', async () => {
    expect(await problems('empty.jsonl', '')).toEqual([{ line: 1, message: 'The file is empty; it needs at least one example line.' }]);
    expect(await problems('blank.jsonl', '\n \n')).toEqual([{ line: 1, message: 'The file has only blank lines; it needs at least one example line.' }]);
    expect(await problems('head.csv', 'text\n')).toEqual([{ line: 1, message: 'The file has a header (line 1) but no data rows; add at least one row under it.' }]);
  });

  it('a line over the length cap and a line that is not UTF-8', async () => {
    const path = tmp.file('long.jsonl', `{"text":"${'x'.repeat(200)}"}\n`);
    const scan = await scanDataFile(path, { maxLineBytes: 100 });
    expect(scan.issues).toEqual([{ line: 1, message: 'Line 1 is 211 bytes long, over the cap of 100 bytes per line; split it into shorter examples.' }]);
    const bin = tmp.file('bin.jsonl', Buffer.concat([Buffer.from('{"text":"a"}\n{"text":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]));
    expect((await scanDataFile(bin)).issues).toEqual([{ line: 2, message: 'Line 2 is not valid UTF-8 text; save the file with UTF-8 encoding.' }]);
  });

  it('keeps the first maxIssues sentences and counts the rest', async () => {
    const content = Array.from({ length: 12 }, () => 'nope').join('\n');
    const scan = await scanDataFile(tmp.file('many.jsonl', content), { maxIssues: 5, container: 'jsonl' });
    expect(scan.issues.map((i) => i.line)).toEqual([1, 2, 3, 4, 5]);
    expect(scan.issueCount).toBe(12);
  });

  it('readDataFile throws a DataFileError naming the first bad line, and stops there', async () => {
    const path = tmp.file('stop.jsonl', jsonl([{ text: 'a' }, { text: 1 }, { text: 2 }]));
    const err = await readDataFile(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataFileError);
    const e = err as DataFileError;
    expect(e.line).toBe(2);
    expect(e.rule).toBe('data.bad-line');
    expect(e.message).toBe('stop.jsonl: Line 2: "text" must be text, but it is a number.');
  });
});

describe('CSV with a header naming the fields', () => {
  it('reads every format, with list cells as JSON and quoted commas and line breaks', async () => {
    const csv = 'instruction,input,output\n"Translate, please","hola","hello"\n"Two\nlines",,ok\n';
    const scan = await scanDataFile(tmp.file('i.csv', csv));
    expect(scan.issues).toEqual([]);
    expect(scan.preview).toEqual([
      { format: 'instruction', line: 2, instruction: 'Translate, please', input: 'hola', output: 'hello' },
      { format: 'instruction', line: 3, instruction: 'Two\nlines', input: null, output: 'ok' },
    ]);
    const mc = await scanDataFile(tmp.file('m.csv', 'context,choices,label\nSky is,"[""blue"", ""red""]",1\n'));
    expect(mc.preview).toEqual([{ format: 'choice', line: 2, context: 'Sky is', choices: ['blue', 'red'], label: 1 }]);
    const tk = await scanDataFile(tmp.file('k.csv', 'tokens\n"[5, 6, 7]"\n'));
    expect(tk.preview).toEqual([{ format: 'tokens', line: 2, tokens: [5, 6, 7] }]);
  });

  it('reports wrong field counts, bad list cells and bad labels by line', async () => {
    const issues = await problems('bad.csv', 'context,choices,label\nc,"[""a"",""b""]",0,extra\nc,[a b],0\nc,"[""a"",""b""]",first\nc,"[""a"",""b""]",2\n');
    expect(issues).toEqual([
      { line: 2, message: 'Line 2 has 4 fields but the header has 3; check for a missing or extra comma, or quote fields that contain commas.' },
      { line: 3, message: 'Line 3: the "choices" cell must be a JSON list such as "[""yes"", ""no""]".' },
      { line: 4, message: 'Line 4: "label" must be a whole number (the index of the correct choice), but it is "first".' },
      { line: 5, message: 'Line 5: "label" is 2, but there are 2 choices (indices 0 to 1); set it to the index of the correct choice.' },
    ]);
  });

  it('refuses a header with repeated, empty or mixed-format names', async () => {
    expect(await problems('h1.csv', 'text,text\na,b\n')).toEqual([{ line: 1, message: 'Line 1 (the header) names the column "text" twice; keep only one.' }]);
    expect(await problems('h2.csv', 'text,,x\na,b,c\n')).toEqual([
      { line: 1, message: 'Line 1 (the header) has an empty column name in column 2; every column needs a name such as "text".' },
    ]);
    expect((await problems('h3.csv', 'text,output\na,b\n'))[0]!.message).toBe(
      'Line 1 (the header) mixes fields of different formats ("text" and "output"); each line must use one format.',
    );
  });

  it('a quoting error names the line the record starts on', async () => {
    const issues = await problems('q.csv', 'text\nfine\nbro"ken\n');
    expect(issues).toEqual([
      { line: 3, message: 'Line 3 has a double quote inside an unquoted field (column 4); enclose the whole field in double quotes and write the quote as "".' },
    ]);
  });
});

it('the SHA-256 in the scan is the hash of the file bytes', async () => {
  const path = tmp.file('h.jsonl', jsonl([{ text: 'hash me' }]));
  const scan = await scanDataFile(path);
  expect(scan.sha256).toBe(createHash('sha256').update(readFileSync(path)).digest('hex'));
  expect(scan.bytes).toBe(readFileSync(path).length);
});
