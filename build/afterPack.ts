// electron-builder `afterPack` hook: flips Electron's fuses in the packaged binary.
//
// Fuses are bits compiled into the Electron binary; flipping them here (after the app is copied into
// place, before electron-builder signs it) makes the security settings in SECURITY.md part of the
// shipped executable rather than of code that an attacker could bypass:
//   RunAsNode off                         — ELECTRON_RUN_AS_NODE cannot turn the app into a plain Node
//   EnableNodeOptionsEnvironmentVariable  — NODE_OPTIONS cannot inject code
//   EnableNodeCliInspectArguments off     — --inspect cannot attach a debugger to the main process
//   OnlyLoadAppFromAsar on                — the app is loaded from app.asar only, never a loose folder
//   EmbeddedAsarIntegrityValidation on    — app.asar is checked against the hash embedded at build
//                                           time (enforced by Electron on macOS and Windows)
// Because RunAsNode is off, jobs run in worker threads, never in child_process.fork.
import { flipFuses, getCurrentFuseWire, FuseState, FuseV1Options, FuseVersion, type FuseV1Config } from '@electron/fuses';
import { join } from 'node:path';
import type { AfterPackContext } from 'electron-builder';

/** The fuse settings every packaged Offsite Studio binary carries. Fuses not named keep Electron's default. */
export const fuseConfig = {
  version: FuseVersion.V1,
  [FuseV1Options.RunAsNode]: false,
  [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
  [FuseV1Options.EnableNodeCliInspectArguments]: false,
  [FuseV1Options.OnlyLoadAppFromAsar]: true,
  [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
} as const satisfies FuseV1Config;

/** The subset of electron-builder's AfterPackContext this hook reads (kept small so tests can build one). */
export type FuseHookContext = Pick<AfterPackContext, 'appOutDir' | 'electronPlatformName' | 'arch'> & {
  packager: { executableName: string; appInfo: { productFilename: string } };
};

// electron-builder's Arch enum value for arm64 (builder-util: ia32 0, x64 1, armv7l 2, arm64 3, universal 4).
// Compared by value so this module does not load electron-builder at run time.
const ARCH_ARM64 = 3;
const ARCH_UNIVERSAL = 4;

/** Path of the Electron executable (or the .app bundle on macOS) that electron-builder just laid out. */
export function electronBinaryPath(context: FuseHookContext): string {
  const { appOutDir, electronPlatformName, packager } = context;
  switch (electronPlatformName) {
    case 'darwin':
    case 'mas':
      return join(appOutDir, `${packager.appInfo.productFilename}.app`);
    case 'win32':
      return join(appOutDir, `${packager.appInfo.productFilename}.exe`);
    case 'linux':
      return join(appOutDir, packager.executableName);
    default:
      throw new Error(`Cannot flip fuses: unknown platform "${electronPlatformName}" in the afterPack context.`);
  }
}

/** Flips the fuses, then reads them back and fails the build if any did not take. */
export async function afterPack(context: FuseHookContext): Promise<void> {
  const binary = electronBinaryPath(context);
  const isMac = context.electronPlatformName === 'darwin' || context.electronPlatformName === 'mas';
  // Flipping a fuse invalidates macOS's ad-hoc signature, which arm64 Macs refuse to run; re-sign ad hoc.
  const resetAdHocDarwinSignature = isMac && (context.arch === ARCH_ARM64 || context.arch === ARCH_UNIVERSAL);
  try {
    await flipFuses(binary, { ...fuseConfig, resetAdHocDarwinSignature });
  } catch (err) {
    throw new Error(`Could not flip Electron fuses in ${binary}: ${(err as Error).message}`);
  }
  const wire = await getCurrentFuseWire(binary);
  const wrong: string[] = [];
  for (const [key, want] of Object.entries(fuseConfig)) {
    if (key === 'version') continue;
    const index = Number(key) as FuseV1Options;
    const expected = want ? FuseState.ENABLE : FuseState.DISABLE;
    if (wire[index] !== expected) wrong.push(FuseV1Options[index]);
  }
  if (wrong.length > 0) {
    throw new Error(`Electron fuses did not take in ${binary}: ${wrong.join(', ')} still have the wrong value.`);
  }
  console.log(`  • fuses set in ${binary}: RunAsNode off, NODE_OPTIONS off, --inspect off, app.asar only, asar integrity on`);
}

export default afterPack;
