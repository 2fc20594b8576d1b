// Turns a raw RFC 822 email (as the SpamAssassin corpus stores it) into plain ASCII text for the
// demo tasks: headers dropped except the subject, MIME bodies decoded (quoted-printable, base64),
// the first text/plain part preferred over HTML (tags stripped), whitespace normalised. Every step
// is a pure string function, so the task files regenerate byte for byte.

export interface CleanEmail {
  subject: string;
  body: string;
}

interface Part {
  headers: Map<string, string>;
  body: string;
}

/** Headers (lower-cased names, first occurrence, folded lines joined) and the body after the first blank line. */
function parsePart(raw: string): Part {
  const text = raw.replace(/\r\n?/g, '\n');
  // A part without headers starts with its blank line.
  if (text.startsWith('\n')) return { headers: new Map(), body: text.slice(1) };
  const cut = text.indexOf('\n\n');
  const head = cut < 0 ? text : text.slice(0, cut);
  const body = cut < 0 ? '' : text.slice(cut + 2);
  const headers = new Map<string, string>();
  let name: string | null = null;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && name !== null) {
      headers.set(name, `${headers.get(name)!} ${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (!m) {
      name = null;
      continue;
    }
    name = m[1]!.toLowerCase();
    // Keep the first occurrence only; later ones are continuation targets no more.
    if (headers.has(name)) name = null;
    else headers.set(name, m[2]!);
  }
  return { headers, body };
}

function contentType(p: Part): { type: string; boundary: string | null } {
  const v = p.headers.get('content-type') ?? 'text/plain';
  const type = (/^\s*([^;\s]+)/.exec(v)?.[1] ?? 'text/plain').toLowerCase();
  const b = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(v);
  return { type, boundary: b ? (b[1] ?? b[2]!) : null };
}

function decodeQuotedPrintable(s: string): string {
  return s.replace(/=\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function decodeTransfer(p: Part): string {
  const cte = (p.headers.get('content-transfer-encoding') ?? '').trim().toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(p.body);
  if (cte === 'base64') return Buffer.from(p.body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
  return p.body;
}

/** The first text/plain leaf of a MIME tree, else the first text/html leaf (depth-first, in order). */
function textLeaves(p: Part, depth = 0): { plain: Part | null; html: Part | null } {
  const { type, boundary } = contentType(p);
  if (type.startsWith('multipart/') && boundary && depth < 8) {
    let plain: Part | null = null;
    let html: Part | null = null;
    const delimiter = `--${boundary}`;
    // Lines before the first delimiter are the preamble, lines after the closing one the epilogue.
    const parts: string[][] = [];
    for (const line of p.body.split('\n')) {
      if (line.startsWith(`${delimiter}--`)) break;
      if (line.startsWith(delimiter)) parts.push([]);
      else parts[parts.length - 1]?.push(line);
    }
    for (const c of parts) {
      const leaf = textLeaves(parsePart(c.join('\n')), depth + 1);
      plain ??= leaf.plain;
      html ??= leaf.html;
    }
    return { plain, html };
  }
  if (type === 'text/plain') return { plain: p, html: null };
  if (type === 'text/html') return { plain: null, html: p };
  return { plain: null, html: null };
}

const ENTITIES: Record<string, string> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '(c)', reg: '(R)', trade: '(TM)', mdash: '-', ndash: '-', hellip: '...', rsquo: "'", lsquo: "'", rdquo: '"', ldquo: '"', bull: '*', middot: '*' };

function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<(br|p|div|tr|li|h[1-6]|table|blockquote)\b[^>]*>/gi, '\n')
    .replace(/<\/(p|div|tr|li|h[1-6]|table|blockquote)\s*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code < 0x110000 ? String.fromCodePoint(code) : ' ';
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}

/** RFC 2047 encoded words (=?charset?Q|B?…?=) in a header, decoded as Latin-1 bytes. */
function decodeHeader(v: string): string {
  return v.replace(/=\?[^?]+\?([QqBb])\?([^?]*)\?=\s*/g, (_, enc: string, data: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('latin1') : decodeQuotedPrintable(data.replace(/_/g, ' ')),
  );
}

const TO_ASCII: Record<string, string> = {
  '\u2018': "'", '\u2019': "'", '\u201a': "'", '\u201b': "'", '\u2032': "'", '\u00b4': "'",
  '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u00ab': '"', '\u00bb': '"',
  '\u2010': '-', '\u2011': '-', '\u2012': '-', '\u2013': '-', '\u2014': '-', '\u2015': '-', '\u00ad': '',
  '\u2026': '...', '\u2022': '*', '\u00b7': '*', '\u00a0': ' ', '\u2002': ' ', '\u2003': ' ', '\u2009': ' ',
  '\u00a9': '(c)', '\u00ae': '(R)', '\u2122': '(TM)', '\u00d7': 'x',
};

// Latin-1 letters U+00C0..U+00FF folded to their base letters (× and ÷ to x and /).
const LATIN1_FOLD = 'A A A A A A AE C E E E E I I I I D N O O O O O x O U U U U Y TH ss a a a a a a ae c e e e e i i i i d n o o o o o / o u u u u y th y'.split(' ');
for (let i = 0; i < LATIN1_FOLD.length; i++) TO_ASCII[String.fromCharCode(0xc0 + i)] ??= LATIN1_FOLD[i]!;

/**
 * ASCII-safe, whitespace-normalised text: typographic characters mapped to ASCII by a fixed table
 * (not Unicode normalisation, whose tables change with the ICU version), other non-ASCII and
 * control characters dropped, spaces collapsed, lines right-trimmed, at most one blank line in a row.
 */
export function normalizeText(s: string): string {
  const mapped = s.replace(/\r\n?/g, '\n').replace(/\t/g, ' ').replace(/[^\n\x20-\x7e]/g, (c) => TO_ASCII[c] ?? '');
  return mapped
    .split('\n')
    .map((l) => l.replace(/ {2,}/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Subject and plain body of a raw email; body is '' when it has no text part. */
export function cleanEmail(raw: string): CleanEmail {
  const top = parsePart(raw);
  const subject = normalizeText(decodeHeader(top.headers.get('subject') ?? '')).replace(/\n/g, ' ');
  const { plain, html } = textLeaves(top);
  let body = '';
  if (plain) body = decodeTransfer(plain);
  else if (html) body = htmlToText(decodeTransfer(html));
  // A text/plain part that is really HTML (common in spam) is stripped as HTML too.
  if (plain && /<(html|body|table|font|p|br)\b/i.test(body)) body = htmlToText(body);
  return { subject, body: normalizeText(body) };
}

/** `s` cut to at most `max` characters, at the last space or newline when one is in the second half. */
export function truncateAtWord(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max + 1);
  const at = Math.max(cut.lastIndexOf(' '), cut.lastIndexOf('\n'));
  return (at > max / 2 ? cut.slice(0, at) : s.slice(0, max)).trimEnd();
}

/** Share of letters, digits and spaces: low for leftover markup, encodings and ASCII art. */
export function proseRatio(s: string): number {
  if (s.length === 0) return 0;
  const m = s.match(/[A-Za-z0-9 \n]/g);
  return (m?.length ?? 0) / s.length;
}
