// Turns zod issues into sentences a user can act on. Schemas in contract.ts carry their own
// sentences (they end with a full stop); zod's generic messages get the field's name in front.
import type { z } from 'zod';

function fieldName(path: PropertyKey[]): string {
  return path.length === 0 ? 'The request' : `"${path.map(String).join('.')}"`;
}

function sentence(issue: z.core.$ZodIssue): string {
  if (/[.!?]$/.test(issue.message)) return issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return issue.keys.length === 1 ? `${keys} is not a known field.` : `${keys} are not known fields.`;
  }
  const detail = issue.message.replace(/^Invalid input: /, '');
  return `${fieldName(issue.path)} is not valid: ${detail}.`;
}

/** One or more sentences, one per distinct problem. */
export function describeIssues(error: z.ZodError): string {
  return [...new Set(error.issues.map(sentence))].join(' ');
}
