// The afterPack hook: its fuse settings, where it looks for the Electron binary on each OS, and
// that it really flips the fuse wire of a binary (a stand-in file carrying Electron's fuse sentinel).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FuseState, FuseV1Options, FuseVersion, getCurrentFuseWire } from '@electron/fuses';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterPack, electronBinaryPath, fuseConfig, type FuseHookContext } from '../../../build/afterPack';

// The sentinel Electron puts in front of its fuse wire (from @electron/fuses' constants).
const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';
const ON = 0x31; // '1'
const OFF = 0x30; // '0'

/** A file laid out like the part of an Electron binary that holds the fuses: version 1, nine fuses. */
function fakeElectron(path: string, wire: number[]): void {
  const body = Buffer.concat([
    Buffer.from('\x7fELF stand-in for an Electron binary\n'),
    Buffer.alloc(300, 0xaa),
    Buffer.from(SENTINEL, 'latin1'),
    Buffer.from([1, wire.length, ...wire]),
    Buffer.alloc(300, 0xbb),
  ]);
  writeFileSync(path, body, { mode: 0o755 });
}

function context(appOutDir: string, electronPlatformName: string, arch = 1): FuseHookContext {
  return {
    appOutDir,
    electronPlatformName,
    arch,
    packager: { executableName: 'offsite-studio', appInfo: { productFilename: 'Offsite Studio' } },
  } as FuseHookContext;
}

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'offsite-fuses-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('build/afterPack.ts', () => {
  it('exports the five fuses SECURITY.md requires, with the required values', () => {
    expect(fuseConfig.version).toBe(FuseVersion.V1);
    expect(fuseConfig[FuseV1Options.RunAsNode]).toBe(false);
    expect(fuseConfig[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(false);
    expect(fuseConfig[FuseV1Options.EnableNodeCliInspectArguments]).toBe(false);
    expect(fuseConfig[FuseV1Options.OnlyLoadAppFromAsar]).toBe(true);
    expect(fuseConfig[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(true);
    // Nothing else is forced: the remaining fuses keep Electron's defaults.
    const keys = Object.keys(fuseConfig).filter((k) => k !== 'version').map(Number).sort();
    expect(keys).toEqual([0, 2, 3, 4, 5]);
  });

  it('finds the Electron binary where electron-builder puts it on each OS', () => {
    expect(electronBinaryPath(context('/out/linux-unpacked', 'linux'))).toBe(join('/out/linux-unpacked', 'offsite-studio'));
    expect(electronBinaryPath(context('/out/win-unpacked', 'win32'))).toBe(join('/out/win-unpacked', 'Offsite Studio.exe'));
    expect(electronBinaryPath(context('/out/mac-arm64', 'darwin'))).toBe(join('/out/mac-arm64', 'Offsite Studio.app'));
    expect(() => electronBinaryPath(context('/out', 'beos'))).toThrow(/unknown platform "beos"/);
  });

  it('flips the fuses in a Linux binary and leaves the others alone', async () => {
    const out = join(dir, 'linux-unpacked');
    mkdirSync(out, { recursive: true });
    const binary = join(out, 'offsite-studio');
    // Start from the opposite of what we want, with the four untouched fuses set to a mix.
    fakeElectron(binary, [ON, ON, ON, ON, OFF, OFF, OFF, ON, OFF]);
    await afterPack(context(out, 'linux'));
    const wire = await getCurrentFuseWire(binary);
    expect(wire[FuseV1Options.RunAsNode]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.EnableNodeCliInspectArguments]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.OnlyLoadAppFromAsar]).toBe(FuseState.ENABLE);
    expect(wire[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(FuseState.ENABLE);
    expect(wire[FuseV1Options.EnableCookieEncryption]).toBe(FuseState.ENABLE);
    expect(wire[FuseV1Options.LoadBrowserProcessSpecificV8Snapshot]).toBe(FuseState.DISABLE);
    expect(wire[FuseV1Options.GrantFileProtocolExtraPrivileges]).toBe(FuseState.ENABLE);
    expect(wire[FuseV1Options.WasmTrapHandlers]).toBe(FuseState.DISABLE);
  });

  it('flips the fuses in a Windows binary named after the product', async () => {
    const out = join(dir, 'win-unpacked');
    mkdirSync(out, { recursive: true });
    const binary = join(out, 'Offsite Studio.exe');
    fakeElectron(binary, [ON, OFF, ON, ON, OFF, OFF, OFF, OFF, OFF]);
    const before = readFileSync(binary);
    await afterPack(context(out, 'win32'));
    const after = readFileSync(binary);
    expect(after.length).toBe(before.length);
    const wire = await getCurrentFuseWire(binary);
    expect([0, 2, 3, 4, 5].map((i) => wire[i as FuseV1Options])).toEqual([FuseState.DISABLE, FuseState.DISABLE, FuseState.DISABLE, FuseState.ENABLE, FuseState.ENABLE]);
  });

  it('fails the build, naming the binary, when the file carries no fuse wire', async () => {
    const out = join(dir, 'broken');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'offsite-studio'), 'not an electron binary');
    await expect(afterPack(context(out, 'linux'))).rejects.toThrow(/Could not flip Electron fuses in .*offsite-studio/);
  });
});
