// Email cleaning for the demo tasks: headers dropped (subject kept), MIME parts chosen and decoded,
// HTML stripped, text made ASCII with normalised whitespace.
import { describe, expect, it } from 'vitest';
import { cleanEmail, normalizeText, proseRatio, truncateAtWord } from '../../../native-models/demo/email';

describe('cleanEmail', () => {
  it('drops the headers of a plain email and keeps its subject and body', () => {
    const raw = 'From someone@example.com  Thu Aug 22 12:36:23 2002\nReturn-Path: <a@b.c>\nSubject: Re: New\n  Sequences\nX-Loop: x\n\nHello   there,\n\n\n\nsee you\t soon.\n';
    expect(cleanEmail(raw)).toEqual({ subject: 'Re: New Sequences', body: 'Hello there,\n\nsee you soon.' });
  });

  it('takes the text/plain part of a multipart email, decoding quoted-printable', () => {
    const raw = [
      'Subject: =?iso-8859-1?Q?Caf=E9_news?=',
      'Content-Type: multipart/alternative; boundary="XYZ"',
      '',
      'This is a multi-part message.',
      '--XYZ',
      'Content-Type: text/html',
      '',
      '<p>html version</p>',
      '--XYZ',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Price: 5=3D5 dollars, a long line that is soft=',
      ' broken.',
      '--XYZ--',
      'epilogue',
    ].join('\n');
    expect(cleanEmail(raw)).toEqual({ subject: 'Cafe news', body: 'Price: 5=5 dollars, a long line that is soft broken.' });
  });

  it('strips HTML when there is no plain part, base64 included', () => {
    const html = '<html><head><title>t</title><style>p{}</style></head><body><p>Click&nbsp;<b>HERE</b> &amp; win</p><br>now &#33;</body></html>';
    const raw = `Subject: Win\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n${Buffer.from(html).toString('base64')}\n`;
    expect(cleanEmail(raw)).toEqual({ subject: 'Win', body: 'Click HERE & win\n\nnow !' });
  });
});

describe('text helpers', () => {
  it('normalizeText maps typographic characters to ASCII and drops the rest', () => {
    expect(normalizeText('\u201cQuoted\u201d \u2014 it\u2019s\u00a0fine \u2026 na\u00efve \u4e2d\u6587 \u0007bell\r\n')).toBe('"Quoted" - it\'s fine ... naive bell');
  });

  it('truncateAtWord cuts at the last space within the limit', () => {
    expect(truncateAtWord('one two three four', 12)).toBe('one two');
    expect(truncateAtWord('short', 12)).toBe('short');
    expect(truncateAtWord('abcdefghijklmnop', 5)).toBe('abcde');
  });

  it('proseRatio is low for encoded or marked-up text', () => {
    expect(proseRatio('Plain words here')).toBe(1);
    expect(proseRatio('=?=/+<>{};;;;')).toBeLessThan(0.2);
  });
});
