// The Models screen end to end: the built renderer in Chromium, window.offsite wired into the real
// gateway and services. Inspect shows stories260K.bin's description (and a bad path's sentence);
// a greedy generation from text on the bundled demo base model streams into the page in a worker
// and shows exactly the text the engine's generate() gives in this process, then the finish line;
// a long sampled run streams and is cancelled from the page.
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stopGenerations } from '../../electron/ipc/models-handlers';
import { generate } from '../../native-models/generate/generate';
import { loadModel } from '../../native-models/models/load';
import { ModelRunner } from '../../native-models/models/runner';
import { repoRoot, useStudioSuite, type Studio } from './harness';

const suite = useStudioSuite();
const stories = resolve(repoRoot, '../shared/fixtures/llama2c/stories260K.bin');
const demoBase = resolve(repoRoot, 'native-models/demo/base');
const used: Studio[] = [];
// A generation still running when a test fails must not outlive its page's services.
afterEach(async () => {
  for (const s of used.splice(0)) await stopGenerations(s.services);
});

const field = (studio: Studio, name: string) => studio.page.locator(`[data-field="${name}"]`);

describe('Models screen (Chromium, real gateway)', () => {
  it('inspects stories260K.bin, and says what is wrong with a bad path', async () => {
    const studio = await suite.open();
    const { page } = studio;
    await studio.openScreen('Models');
    await page.getByLabel('Model folder or file').fill(stories);
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    const description = field(studio, 'description');
    await expect.poll(() => description.getAttribute('data-kind')).toBe('llama2c');
    // The checkpoint's recipe (../shared/fixtures/llama2c/README.md).
    expect(await field(studio, 'architecture').textContent()).toBe('llama2.c checkpoint (legacy version 0, float32) model_type llama');
    expect(await field(studio, 'parameters').textContent()).toBe('260.0 K (260,032)');
    expect(await field(studio, 'dtype').textContent()).toMatch(/^F32, /);
    expect(await field(studio, 'layers').textContent()).toBe('5 layers, hidden size 64, intermediate size 172');
    expect(await field(studio, 'attention').textContent()).toBe('8 heads, 4 key/value heads, head size 8');
    expect(await field(studio, 'vocabulary').textContent()).toMatch(/^512 tokens, 512 positions; /);
    expect(await field(studio, 'tokenizer').getAttribute('data-present')).toBe('false');
    expect(await field(studio, 'inspect-text').textContent()).toContain('tokenizer: none');
    // No tokenizer: the form switches to token ids and says why.
    expect(await field(studio, 'mode-tokens').isChecked()).toBe(true);
    expect(await field(studio, 'mode-text').isDisabled()).toBe(true);
    expect(await field(studio, 'no-tokenizer').textContent()).toContain('This model has no tokenizer.json, so its prompt must be token ids');
    await studio.screenshot('models-inspect');

    const missing = resolve(repoRoot, 'test-results', 'no-such-model.bin');
    await page.getByLabel('Model folder or file').fill(missing);
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    await expect
      .poll(() => field(studio, 'inspect-error').textContent())
      .toBe(`There is nothing at ${missing}; give the full path of a model folder, a .safetensors file, a llama2.c .bin checkpoint, a PEFT adapter folder or a package.`);
    expect(await description.count()).toBe(0);
    expect(studio.problems).toEqual([]);
  });

  it('generates text greedily from the demo base model and shows the engine’s output and the finish line', async () => {
    const studio = await suite.open();
    used.push(studio);
    const { page } = studio;
    studio.services.settings.set({ executionProvider: 'cpu', threads: 1 });
    const prompt = 'Dear team,';
    // The reference: the engine in this process, one thread, greedy, with the cache.
    const m = await loadModel(demoBase);
    const ids = m.tokenizer!.encode(prompt);
    const runner = new ModelRunner(m, { settings: { provider: 'cpu', intraOpThreads: 1 }, contextLength: ids.length + 24 });
    const ref = await generate(runner, ids, { maxNewTokens: 24, useCache: true }).finally(() => runner.release());
    const expectedText = m.tokenizer!.decode(ref.tokens, { skipSpecialTokens: true });
    expect(expectedText.length).toBeGreaterThan(0);

    await studio.openScreen('Models');
    await page.getByLabel('Model folder or file').fill(demoBase);
    await page.getByRole('button', { name: 'Inspect', exact: true }).click();
    await expect.poll(() => field(studio, 'tokenizer').getAttribute('data-present')).toBe('true');
    expect(await field(studio, 'mode-text').isChecked()).toBe(true);
    expect(await page.getByLabel('Max new tokens').inputValue()).toBe('64');
    expect(await page.getByLabel('Temperature').inputValue()).toBe('0');
    expect(await field(studio, 'use-cache').isChecked()).toBe(true);

    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Max new tokens').fill('24');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    const gen = field(studio, 'generation');
    await expect.poll(() => gen.getAttribute('data-status'), { timeout: 120_000 }).toBe('done');
    expect(await field(studio, 'output-text').textContent()).toBe(expectedText);
    expect(await gen.getAttribute('data-tokens')).toBe(String(ref.tokens.length));
    expect(await field(studio, 'generation-count').textContent()).toBe(`${ref.tokens.length} of 24 tokens`);
    expect(await field(studio, 'finish-reason').getAttribute('data-finish')).toBe(ref.finish);
    expect(await field(studio, 'ms-per-token').textContent()).toMatch(/^\d+\.\d{2} ms$/);
    expect(await field(studio, 'prefill-ms').textContent()).toMatch(/^\d+\.\d{2} ms$/);
    expect(await field(studio, 'execution-provider').textContent()).toBe('CPU CPU requested.');
    expect(await field(studio, 'generation-message').textContent()).toMatch(/^Generated \d+ tokens? \((reached the length limit|stopped at the end-of-sequence token)\), \d+\.\d{2} ms per token on CPU\.$/);
    // The form is offered again.
    expect(await page.getByRole('button', { name: 'Generate', exact: true }).isEnabled()).toBe(true);
    expect(await page.locator('[data-action="cancel"]').count()).toBe(0);
    await studio.screenshot('models-generated');

    // A long sampled run without the cache streams into the page while it runs, and Cancel stops it.
    await page.getByLabel('Max new tokens').fill('240');
    await page.getByLabel('Temperature').fill('1');
    await page.getByLabel('Seed').fill('3');
    await field(studio, 'use-cache').uncheck();
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await expect.poll(async () => (await gen.getAttribute('data-status')) === 'running' && Number(await gen.getAttribute('data-tokens')) > 0, { timeout: 60_000, interval: 50 }).toBe(true);
    expect((await field(studio, 'output-text').textContent())!.length).toBeGreaterThan(0);
    await page.locator('[data-action="cancel"]').click();
    await expect.poll(() => gen.getAttribute('data-status'), { timeout: 60_000 }).toBe('cancelled');
    const kept = Number(await gen.getAttribute('data-tokens'));
    expect(kept).toBeLessThan(240);
    expect(await field(studio, 'generation-message').textContent()).toBe(`The generation was cancelled after ${kept} token${kept === 1 ? '' : 's'}.`);
    expect(await field(studio, 'generation-cancelled').textContent()).toBe('Cancelled: the text above is what was generated before the cancel.');
    await studio.screenshot('models-cancelled');
    expect(studio.problems).toEqual([]);
  });

  it('shows a refused request as the gateway’s sentence', async () => {
    const studio = await suite.open();
    used.push(studio);
    const { page } = studio;
    await studio.openScreen('Models');
    await page.getByLabel('Model folder or file').fill(stories);
    await page.getByRole('radio', { name: 'Text (encoded with the model\'s tokenizer.json)' }).check();
    await page.getByLabel('Prompt', { exact: true }).fill('Once upon a time');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await expect.poll(() => field(studio, 'generate-error').textContent()).toBe('stories260K.bin has no tokenizer.json, so a text prompt cannot be encoded; give token ids instead.');
    expect(await field(studio, 'generation').count()).toBe(0);
    expect(studio.problems).toEqual([]);
  });
});
