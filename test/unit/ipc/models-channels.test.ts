// The models.* and generate.* channels through the real gateway and services: inspect gives
// `offsite inspect`'s description (and a malformed file the reader's rule); generation runs in a
// worker and gives the same tokens as the engine's generate() in this process, with and without
// the key/value cache, streams growing token counts on job.progress (kind "generate"), refuses bad
// requests with the CLI's sentences, and stops when cancelled.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { channelFlags, events as eventSchemas, type EventPayload, type GenerationView } from '../../../electron/ipc/contract';
import { stopGenerations } from '../../../electron/ipc/models-handlers';
import { generate } from '../../../native-models/generate/generate';
import { loadModel } from '../../../native-models/models/load';
import { ModelRunner } from '../../../native-models/models/runner';
import { offsite } from '../formats/helpers';
import { useGatewayStudios, type GatewayStudio } from './helpers';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const stories = resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin');
const demoBase = resolve(repoRoot, 'native-models/demo/base');

const { studio } = useGatewayStudios();
const used: GatewayStudio[] = [];
// Registered after useGatewayStudios' hook, so it runs first: workers stop before the services close.
afterEach(async () => {
  for (const s of used.splice(0)) await stopGenerations(s.services);
});

/** A studio on CPU with one thread, as the in-process reference runs. */
function oneThreadStudio(): GatewayStudio {
  const s = studio();
  s.services.settings.set({ executionProvider: 'cpu', threads: 1 });
  used.push(s);
  return s;
}

async function reference(model: string, prompt: number[], opts: { maxNewTokens: number; useCache: boolean; temperature?: number; seed?: number }): Promise<{ tokens: number[]; text: string | null }> {
  const m = await loadModel(model);
  const runner = new ModelRunner(m, { settings: { provider: 'cpu', intraOpThreads: 1 }, contextLength: prompt.length + opts.maxNewTokens });
  try {
    const r = await generate(runner, prompt, opts);
    return { tokens: r.tokens, text: m.tokenizer ? m.tokenizer.decode(r.tokens, { skipSpecialTokens: true }) : null };
  } finally {
    await runner.release();
  }
}

async function finished(s: GatewayStudio, id: string): Promise<{ end: EventPayload<'job.finished'>; view: GenerationView }> {
  const end = await s.until('job.finished', (p) => p.jobId === id);
  return { end, view: await s.call('generate.status', { id }) };
}

const progressOf = (s: GatewayStudio, id: string) =>
  s.emitted.filter((e): e is { event: 'job.progress'; payload: EventPayload<'job.progress'> } => e.event === 'job.progress' && e.payload.jobId === id).map((e) => e.payload);

describe('models.inspect', () => {
  it('describes stories260K.bin as offsite inspect does', async () => {
    const s = studio();
    const r = await s.call('models.inspect', { path: stories });
    // The checkpoint's recipe (../shared/fixtures/llama2c/README.md).
    expect(r.description).toMatchObject({ kind: 'llama2c', path: stories, modelType: 'llama', layers: 5, hiddenSize: 64, heads: 8, kvHeads: 4, vocabSize: 512, maxPositions: 512, dtype: 'F32', tokenizer: { present: false } });
    expect(r.text.split('\n')[0]).toBe('llama2.c checkpoint (legacy version 0, float32) (model_type llama)');
    expect(r.text).toContain('tokenizer: none');
    const cli = await offsite('inspect', stories);
    expect(cli.out).toBe(`${stories}\n${r.text}\n`);
  });

  it('gives the reader’s one-line reason for a malformed file, and a sentence for a missing one', async () => {
    const s = studio();
    const dir = join(repoRoot, 'test-results', 'models-channels');
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, 'bad.safetensors');
    // A header length of 1000 bytes in a 10-byte file.
    const bytes = new Uint8Array(10);
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    writeFileSync(bad, bytes);
    const e = await s.refusal('models.inspect', { path: bad });
    expect(e.code).toBe('failed');
    expect(e.message).toContain('header length ≤ file size − 8');
    expect(e.message.split('\n')).toHaveLength(1);
    const missing = await s.refusal('models.inspect', { path: join(dir, 'no-such-model') });
    expect(missing).toEqual({ code: 'failed', message: `There is nothing at ${join(dir, 'no-such-model')}; give the full path of a model folder, a .safetensors file, a llama2.c .bin checkpoint, a PEFT adapter folder or a package.` });
    const relative = await s.refusal('models.inspect', { path: 'models/x' });
    expect(relative).toEqual({ code: 'invalid-request', message: 'The path to inspect must be a full path, such as /models/tinyllama.' });
  });
});

describe('generate.*', () => {
  it('reads and writes nothing an auditor may not: every channel is non-mutating', () => {
    for (const c of ['models.inspect', 'generate.start', 'generate.cancel', 'generate.status'] as const) expect(channelFlags[c].mutates).toBe(false);
  });

  it('generates the engine’s greedy tokens from BOS, with and without the key/value cache', async () => {
    const s = oneThreadStudio();
    const expected = await reference(stories, [1], { maxNewTokens: 24, useCache: true });
    expect(expected.tokens).toHaveLength(24);
    expect((await reference(stories, [1], { maxNewTokens: 24, useCache: false })).tokens).toEqual(expected.tokens);

    for (const useCache of [true, false]) {
      const { id } = await s.call('generate.start', { model: stories, tokens: [1], maxNewTokens: 24, temperature: 0, useCache });
      const { end, view } = await finished(s, id);
      expect(end.kind).toBe('generate');
      expect(end.outcome).toBe('done');
      expect(view.status).toBe('done');
      expect(view.result!.tokens).toEqual(expected.tokens);
      expect(view.tokens).toEqual(expected.tokens);
      expect(view.result!.text).toBeNull();
      expect(view.result!.useCache).toBe(useCache);
      expect(view.result!.finish).toBe('length');
      expect(view.result!.executionProvider).toBe('cpu');
      expect(view.result!.providerReason).toBe('CPU requested.');
      expect(view.result!.msPerToken).toBeGreaterThan(0);
      expect(view.result!.prefillMs).toBeGreaterThan(0);
      expect(end.message).toBe(`Generated 24 tokens (reached the length limit), ${view.result!.msPerToken.toFixed(2)} ms per token on CPU.`);
      // The model's load is announced with its execution provider before any token.
      const progress = progressOf(s, id);
      expect(progress[0]!.stage).toBe('started');
      expect(progress[0]!.message).toBe('Generating with stories260K.bin on CPU: CPU requested.');
      for (const p of progress) eventSchemas['job.progress'].parse(p);
      expect(progress.at(-1)!.series!.tokens).toEqual(expected.tokens);
    }
  });

  it('streams growing token counts (sampled, no cache) and ends with the engine’s tokens for that seed', async () => {
    const s = oneThreadStudio();
    const opts = { maxNewTokens: 400, useCache: false, temperature: 1, seed: 7 };
    const expected = await reference(stories, [1], opts);
    const { id } = await s.call('generate.start', { model: stories, tokens: [1], topP: 1, ...opts });
    const { view } = await finished(s, id);
    expect(view.status).toBe('done');
    expect(view.result!.tokens).toEqual(expected.tokens);
    const streamed = progressOf(s, id).filter((p) => p.stage === 'tokens');
    expect(streamed.length).toBeGreaterThanOrEqual(2);
    const counts = streamed.map((p) => p.step);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThan(counts[i - 1]!);
    expect(counts.at(-1)).toBe(expected.tokens.length);
    for (const p of streamed) {
      expect(p.kind).toBe('generate');
      expect(p.total).toBe(400);
      expect(p.series!.tokens).toEqual(expected.tokens.slice(0, p.step));
      expect(p.text).toBeUndefined();
    }
  });

  it('refuses bad requests with the CLI’s sentences', async () => {
    const s = studio();
    used.push(s);
    expect(await s.refusal('generate.start', { model: stories, prompt: 'Once', tokens: [1], maxNewTokens: 4 })).toEqual({ code: 'invalid-request', message: 'Give exactly one of a text prompt or token ids.' });
    expect(await s.refusal('generate.start', { model: stories, maxNewTokens: 4 })).toEqual({ code: 'invalid-request', message: 'Give exactly one of a text prompt or token ids.' });
    expect(await s.refusal('generate.start', { model: stories, prompt: 'Once upon a time', maxNewTokens: 4 })).toEqual({
      code: 'failed',
      message: 'stories260K.bin has no tokenizer.json, so a text prompt cannot be encoded; give token ids instead.',
    });
    expect(await s.refusal('generate.start', { model: stories, tokens: [1, 512], maxNewTokens: 4 })).toEqual({ code: 'failed', message: "Token 512 is outside the model's vocabulary (0..511)." });
    expect(await s.refusal('generate.start', { model: stories, tokens: [1, 2, 3], maxNewTokens: 510 })).toEqual({
      code: 'failed',
      message: "The prompt (3 tokens) plus max new tokens 510 exceed the model's context of 512 positions.",
    });
    expect((await s.refusal('generate.start', { model: stories, tokens: [1], maxNewTokens: 4097 })).message).toBe('The number of new tokens must be a whole number from 1 to 4096.');
    expect((await s.refusal('generate.start', { model: stories, tokens: [1], maxNewTokens: 4, topP: 0 })).message).toBe('Top-p must be a number above 0 and at most 1.');
    expect(await s.refusal('generate.start', { model: join(repoRoot, 'no-such-model.bin'), tokens: [1], maxNewTokens: 4 })).toEqual({
      code: 'failed',
      message: `There is no model at ${join(repoRoot, 'no-such-model.bin')}; give a model folder (config.json + model.safetensors) or a llama2.c .bin file.`,
    });
    // The same checks, in the CLI's words, from `offsite generate`.
    expect((await offsite('generate', '--model', stories, '--tokens', '1,512', '--max-new-tokens', '4')).err).toContain("Token 512 is outside the model's vocabulary (0..511).");
    expect((await offsite('generate', '--model', stories, '--prompt', 'Once', '--max-new-tokens', '4')).err).toContain(
      'stories260K.bin has no tokenizer.json, so --prompt TEXT cannot be encoded; give --tokens IDS instead.',
    );
    expect((await offsite('generate', '--model', stories, '--tokens', '1,2,3', '--max-new-tokens', '510')).err).toContain(
      "The prompt (3 tokens) plus --max-new-tokens 510 exceed the model's context of 512 positions.",
    );
    // Nothing was started.
    expect(s.emitted.filter((e) => e.event === 'job.progress' || e.event === 'job.finished')).toEqual([]);
  });

  it('decodes text with the model’s tokenizer, and stops a long sampled run when cancelled', async () => {
    const s = oneThreadStudio();
    const m = await loadModel(demoBase);
    const prompt = m.tokenizer!.encode('Dear team,');
    const { id } = await s.call('generate.start', { model: demoBase, prompt: 'Dear team,', maxNewTokens: 240, temperature: 1, seed: 3, useCache: false });
    expect((await s.call('generate.status', { id })).prompt).toEqual(prompt);
    const first = await s.until('job.progress', (p) => p.jobId === id && p.stage === 'tokens');
    expect(await s.call('generate.cancel', { id })).toEqual({ id, cancelled: true });
    const { end, view } = await finished(s, id);
    expect(end.outcome).toBe('cancelled');
    expect(view.status).toBe('cancelled');
    expect(view.result).toBeNull();
    expect(view.tokens.length).toBeGreaterThanOrEqual(first.step);
    expect(view.tokens.length).toBeLessThan(240);
    expect(end.message).toBe(`The generation was cancelled after ${view.tokens.length} token${view.tokens.length === 1 ? '' : 's'}.`);
    // The text streamed so far is the tokenizer's decoding of the tokens so far.
    expect(typeof first.text).toBe('string');
    expect(first.text).toBe(m.tokenizer!.decode(first.series!.tokens!, { skipSpecialTokens: true }));
    // Cancelling again is a no-op, and the next generation may start.
    expect(await s.call('generate.cancel', { id })).toEqual({ id, cancelled: false });
    const again = await s.call('generate.start', { model: demoBase, prompt: 'Dear team,', maxNewTokens: 2 });
    expect((await finished(s, again.id)).view.status).toBe('done');
  });
});
