// Draws the Offsite Studio icon and writes every format the installers need, with no image tools:
//   build/icons/<n>x<n>.png   n = 16 32 48 64 128 256 512 1024   (Linux: electron-builder's icon set)
//   build/icon.png            1024×1024                            (the source image)
//   build/icon.ico            16–256 px PNG-compressed entries     (Windows, NSIS)
//   build/icon.icns           16–1024 px PNG entries                (macOS, dmg)
// The outputs are committed; rerun with `npx tsx build/make-icons.ts` after changing the drawing.
//
// The drawing: a deep-teal rounded square (the workstation), a white ring (the emulator, a lossy
// stand-in for the model) and an amber disc set off to one side (the adapter that travels offsite).
import { deflateSync } from 'node:zlib';
import { mkdirSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PNG_SIZES = [16, 32, 48, 64, 128, 256, 512, 1024] as const;
export const ICO_SIZES = [16, 24, 32, 48, 64, 128, 256] as const;
/** ICNS element types holding PNG data, with the pixel size each one must have. */
export const ICNS_TYPES: ReadonlyArray<readonly [string, number]> = [
  ['icp4', 16], ['icp5', 32], ['icp6', 64], ['ic07', 128], ['ic08', 256], ['ic09', 512], ['ic10', 1024],
  ['ic11', 32], ['ic12', 64], ['ic13', 256], ['ic14', 512],
];

type Rgb = readonly [number, number, number];
const TEAL_TOP: Rgb = [0x12, 0x4a, 0x57];
const TEAL_BOTTOM: Rgb = [0x0b, 0x2c, 0x36];
const RING: Rgb = [0xf3, 0xf6, 0xf5];
const AMBER: Rgb = [0xf2, 0xa3, 0x3a];

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Signed distance (in unit-square coordinates) to a rounded square inset by `m` with corner radius `r`. */
function roundedSquare(x: number, y: number, m: number, r: number): number {
  const h = 0.5 - m - r;
  const qx = Math.abs(x - 0.5) - h;
  const qy = Math.abs(y - 0.5) - h;
  const outside = Math.hypot(Math.max(qx, 0), Math.max(qy, 0));
  return outside + Math.min(Math.max(qx, qy), 0) - r;
}

/** Renders the icon at `size`×`size` as straight (non-premultiplied) RGBA. */
export function renderIcon(size: number): Uint8Array {
  const px = new Uint8Array(size * size * 4);
  // Coverage from a signed distance: one pixel of anti-aliasing at every size.
  const cover = (d: number) => clamp01(0.5 - d * size);
  // Small sizes get a slightly thicker ring so it stays legible at 16 px.
  const ringWidth = size <= 32 ? 0.12 : 0.095;
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const x = (i + 0.5) / size;
      const y = (j + 0.5) / size;
      let r = 0, g = 0, b = 0, a = 0;
      const over = (c: Rgb, alpha: number) => {
        // "source over" compositing in straight alpha
        const outA = alpha + a * (1 - alpha);
        if (outA <= 0) return;
        r = (c[0] * alpha + r * a * (1 - alpha)) / outA;
        g = (c[1] * alpha + g * a * (1 - alpha)) / outA;
        b = (c[2] * alpha + b * a * (1 - alpha)) / outA;
        a = outA;
      };
      const bg = cover(roundedSquare(x, y, 0.055, 0.2));
      const t = y;
      over([
        TEAL_TOP[0] + (TEAL_BOTTOM[0] - TEAL_TOP[0]) * t,
        TEAL_TOP[1] + (TEAL_BOTTOM[1] - TEAL_TOP[1]) * t,
        TEAL_TOP[2] + (TEAL_BOTTOM[2] - TEAL_TOP[2]) * t,
      ], bg);
      const dRing = Math.abs(Math.hypot(x - 0.44, y - 0.56) - 0.2) - ringWidth / 2;
      over(RING, cover(dRing) * bg);
      const dDot = Math.hypot(x - 0.72, y - 0.3) - 0.115;
      over(AMBER, cover(dDot) * bg);
      const o = (j * size + i) * 4;
      px[o] = Math.round(r);
      px[o + 1] = Math.round(g);
      px[o + 2] = Math.round(b);
      px[o + 3] = Math.round(a * 255);
    }
  }
  return px;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Encodes straight RGBA pixels as an 8-bit RGBA PNG (filter 0 on every row; zlib does the rest). */
export function encodePng(size: number, rgba: Uint8Array): Buffer {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    raw.set(rgba.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** A Windows .ico whose entries are PNG images (supported since Windows Vista; what NSIS embeds). */
export function encodeIco(pngs: ReadonlyArray<readonly [number, Buffer]>): Buffer {
  const header = Buffer.alloc(6 + 16 * pngs.length);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // type 1 = icon
  header.writeUInt16LE(pngs.length, 4);
  let offset = header.length;
  pngs.forEach(([size, png], k) => {
    const e = 6 + 16 * k;
    header[e] = size >= 256 ? 0 : size; // 0 means 256
    header[e + 1] = size >= 256 ? 0 : size;
    header[e + 2] = 0; // palette colours
    header[e + 3] = 0;
    header.writeUInt16LE(1, e + 4); // planes
    header.writeUInt16LE(32, e + 6); // bits per pixel
    header.writeUInt32LE(png.length, e + 8);
    header.writeUInt32LE(offset, e + 12);
    offset += png.length;
  });
  return Buffer.concat([header, ...pngs.map(([, png]) => png)]);
}

/** A macOS .icns made of PNG elements (the format `iconutil` produces). */
export function encodeIcns(entries: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const parts = entries.map(([type, png]) => {
    const head = Buffer.alloc(8);
    head.write(type, 0, 'latin1');
    head.writeUInt32BE(png.length + 8, 4);
    return Buffer.concat([head, png]);
  });
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'latin1');
  head.writeUInt32BE(body.length + 8, 4);
  return Buffer.concat([head, body]);
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

export function writeIconSet(buildDir: string): string[] {
  const pngs = new Map<number, Buffer>();
  const sizes = new Set<number>([...PNG_SIZES, ...ICO_SIZES, ...ICNS_TYPES.map(([, s]) => s)]);
  for (const size of sizes) pngs.set(size, encodePng(size, renderIcon(size)));
  const written: string[] = [];
  const put = (rel: string, bytes: Uint8Array) => {
    writeAtomic(join(buildDir, rel), bytes);
    written.push(rel);
  };
  for (const size of PNG_SIZES) put(`icons/${size}x${size}.png`, pngs.get(size)!);
  put('icon.png', pngs.get(1024)!);
  put('icon.ico', encodeIco(ICO_SIZES.map((s) => [s, pngs.get(s)!] as const)));
  put('icon.icns', encodeIcns(ICNS_TYPES.map(([type, s]) => [type, pngs.get(s)!] as const)));
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const buildDir = dirname(fileURLToPath(import.meta.url));
  for (const rel of writeIconSet(buildDir)) console.log(`wrote build/${rel}`);
}
