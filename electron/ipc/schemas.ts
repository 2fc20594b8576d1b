// Schema pieces every part of the IPC contract shares. Like contract.ts, this file imports
// nothing but zod, so the renderer (type-only) and the e2e bridge can import the contract.
import { z } from 'zod';

export const noRequest = z.undefined({ error: 'This call takes no request.' });

export const MAX_PATH = 4096;

/** A path the main process can use without guessing a working folder: absolute on any platform. */
export function fullPath(what: string, example: string) {
  return z
    .string({ error: `The ${what} must be text.` })
    .trim()
    .min(1, { error: `Give the ${what}.` })
    .max(MAX_PATH, { error: `The ${what} is longer than ${MAX_PATH} characters.` })
    .refine((p) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(p), { error: `The ${what} must be a full path, such as ${example}.` })
    .refine((p) => !p.includes('\u0000'), { error: `The ${what} must not contain a NUL character.` });
}

export function wholeNumber(what: string, min: number, max: number) {
  const sentence = `The ${what} must be a whole number from ${min} to ${max}.`;
  return z.number({ error: sentence }).int({ error: sentence }).min(min, { error: sentence }).max(max, { error: sentence });
}
