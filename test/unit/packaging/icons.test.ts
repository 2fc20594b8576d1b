// The committed icon set: each PNG decodes (chunk CRCs, zlib data, every filter type) to the size
// its name says and actually shows the icon; the .ico and .icns containers hold the sizes each OS needs.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { crc32 } from '../../../build/make-icons';

const buildDir = fileURLToPath(new URL('../../../build', import.meta.url));

interface Image { width: number; height: number; rgba: Uint8Array }

/** A small, strict PNG decoder for 8-bit RGBA, non-interlaced images. */
function decodePng(bytes: Buffer): Image {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let pos = 8;
  let width = 0, height = 0;
  const idat: Buffer[] = [];
  let sawEnd = false;
  while (pos < bytes.length) {
    const len = bytes.readUInt32BE(pos);
    const type = bytes.toString('latin1', pos + 4, pos + 8);
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    expect(bytes.readUInt32BE(pos + 8 + len), `CRC of ${type}`).toBe(crc32(bytes.subarray(pos + 4, pos + 8 + len)));
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([data[8], data[9], data[10], data[11], data[12]]).toEqual([8, 6, 0, 0, 0]);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') sawEnd = true;
    pos += 12 + len;
  }
  expect(sawEnd).toBe(true);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  expect(raw.length).toBe(height * (stride + 1));
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const cur = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= 4 ? out[y * stride + x - 4]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= 4 && y > 0 ? out[(y - 1) * stride + x - 4]! : 0;
      let v: number;
      switch (filter) {
        case 0: v = cur; break;
        case 1: v = cur + a; break;
        case 2: v = cur + b; break;
        case 3: v = cur + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = cur + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`bad PNG filter ${filter}`);
      }
      out[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, rgba: out };
}

const pixel = (img: Image, x: number, y: number) => [...img.rgba.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4)];

describe('build/ icons', () => {
  it.each([16, 32, 48, 64, 128, 256, 512, 1024])('build/icons/%dx%d.png is a valid PNG of that size showing the icon', (size) => {
    const img = decodePng(readFileSync(resolve(buildDir, `icons/${size}x${size}.png`)));
    expect([img.width, img.height]).toEqual([size, size]);
    // Rounded corners are transparent, the middle of the tile is opaque, and the image is not one flat colour.
    expect(pixel(img, 0, 0)[3]).toBe(0);
    expect(pixel(img, Math.floor(size / 2), Math.floor(size * 0.12))[3]).toBe(255);
    const colours = new Set<string>();
    for (let i = 0; i < img.rgba.length; i += 4 * Math.max(1, Math.floor(size / 8))) colours.add(pixel(img, (i / 4) % size, Math.floor(i / 4 / size)).join(','));
    expect(colours.size).toBeGreaterThan(3);
  });

  it('build/icon.png is the 1024 px source image', () => {
    expect(readFileSync(resolve(buildDir, 'icon.png')).equals(readFileSync(resolve(buildDir, 'icons/1024x1024.png')))).toBe(true);
  });

  it('build/icon.ico holds PNG entries from 16 to 256 px with a correct directory', () => {
    const ico = readFileSync(resolve(buildDir, 'icon.ico'));
    expect([ico.readUInt16LE(0), ico.readUInt16LE(2)]).toEqual([0, 1]);
    const count = ico.readUInt16LE(4);
    const sizes: number[] = [];
    for (let k = 0; k < count; k++) {
      const e = 6 + 16 * k;
      const declared = ico[e] === 0 ? 256 : ico[e]!;
      const length = ico.readUInt32LE(e + 8);
      const offset = ico.readUInt32LE(e + 12);
      expect(offset + length).toBeLessThanOrEqual(ico.length);
      const img = decodePng(ico.subarray(offset, offset + length));
      expect(img.width).toBe(declared);
      sizes.push(declared);
    }
    expect(sizes).toEqual(expect.arrayContaining([16, 32, 48, 256]));
  });

  it('build/icon.icns holds PNG elements covering 16 to 1024 px', () => {
    const icns = readFileSync(resolve(buildDir, 'icon.icns'));
    expect(icns.toString('latin1', 0, 4)).toBe('icns');
    expect(icns.readUInt32BE(4)).toBe(icns.length);
    const expectedSize: Record<string, number> = { icp4: 16, icp5: 32, icp6: 64, ic07: 128, ic08: 256, ic09: 512, ic10: 1024, ic11: 32, ic12: 64, ic13: 256, ic14: 512 };
    const seen: string[] = [];
    let pos = 8;
    while (pos < icns.length) {
      const type = icns.toString('latin1', pos, pos + 4);
      const len = icns.readUInt32BE(pos + 4);
      const img = decodePng(icns.subarray(pos + 8, pos + len));
      expect(img.width, type).toBe(expectedSize[type]);
      seen.push(type);
      pos += len;
    }
    expect(pos).toBe(icns.length);
    expect(seen).toEqual(expect.arrayContaining(['icp4', 'ic07', 'ic08', 'ic09', 'ic10']));
  });
});
