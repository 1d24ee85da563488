// A screenshot of a preview for reviewers, taken by headless Chromium through playwright-core. One browser
// per screenshot: slower than a shared one, but nothing outlives the call when a page or the worker misbehaves.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import type { Screenshot } from '../domain/contracts';

export interface ScreenshotOptions {
  chromiumPath: string;
  viewport: { width: number; height: number };
}

export type ScreenshotFile = Omit<Screenshot, 'url'>;

// Without the networking switches Chromium waits for update and sync servers it cannot reach, and on a
// closed network it hangs.
const CHROMIUM_ARGS = ['--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];
const LAUNCH_TIMEOUT_MS = 30_000;
const LOAD_TIMEOUT_MS = 30_000;
/** Pages that keep polling never go network-idle; after this long the page is shot as it is. */
const NETWORK_IDLE_CAP_MS = 3_000;
/** Whom Chromium runs as when the worker is root: nobody, so a page that breaks out of the renderer is no one. */
const UNPRIVILEGED_UID = 65534;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface ScreenshotTaken extends ScreenshotFile {
  /** Why Chromium's own sandbox was off for this page, when it was. */
  unsandboxed?: string;
}

/**
 * Loads `url` in a viewport of the given size and saves what it shows as a PNG at `file`. The page renders
 * repository code, so Chromium runs unprivileged (as nobody when the worker is root) with its own sandbox
 * on, and the page may load only from its own origin (the preview server): anything else is aborted.
 */
export async function takeScreenshot(url: string, file: string, options: ScreenshotOptions): Promise<ScreenshotTaken> {
  await fs.access(options.chromiumPath, constants.X_OK).catch(() => {
    throw new Error(`Chromium not found at ${options.chromiumPath}; install the Debian package chromium or set CHROMIUM_PATH`);
  });
  const browser = await launchConfined(options.chromiumPath);
  try {
    const origin = new URL(url).origin;
    await browser.context.route('**/*', (route) => {
      const target = route.request().url();
      const allowed = target.startsWith('data:') || target.startsWith('blob:') || (URL.canParse(target) && new URL(target).origin === origin);
      return allowed ? route.continue() : route.abort('blockedbyclient');
    });
    const page = await browser.context.newPage();
    const response = await page.goto(url, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
    if (response && !response.ok()) throw new Error(`${url} answered HTTP ${response.status()}`);
    await page.waitForLoadState('networkidle', { timeout: NETWORK_IDLE_CAP_MS }).catch(() => undefined);
    const png = await page.screenshot({ type: 'png', fullPage: false, animations: 'disabled' });
    // The file is what reviewers get, so its own header says what size it is.
    const { width, height } = pngSize(png);
    await writeAtomically(file, png);
    return { width, height, bytes: png.length, ...(browser.unsandboxed ? { unsandboxed: browser.unsandboxed } : {}) };
  } finally {
    await browser.close();
  }

  async function launchConfined(chromiumPath: string): Promise<{ context: BrowserContext; unsandboxed: string | null; close(): Promise<void> }> {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-chromium-'));
    const cleanup = () => fs.rm(home, { recursive: true, force: true });
    const launch = async (executablePath: string, extraArgs: string[]) =>
      chromium.launchPersistentContext(path.join(home, 'profile'), {
        executablePath,
        args: [...CHROMIUM_ARGS, ...extraArgs],
        timeout: LAUNCH_TIMEOUT_MS,
        viewport: options.viewport,
        deviceScaleFactor: 1,
        env: { HOME: path.join(home, 'profile'), PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
    try {
      const executable = await unprivileged(chromiumPath, home);
      let unsandboxed: string | null = null;
      const context = await launch(executable, []).catch((error: unknown) => {
        // No user namespaces for Chromium's sandbox here: still unprivileged, still one origin, and said so.
        const message = error instanceof Error ? error.message : String(error);
        unsandboxed = /sandbox/i.test(message) ? 'no usable sandbox on this machine' : message.split('\n')[0]!;
        return launch(executable, ['--no-sandbox']);
      });
      return { context, unsandboxed, close: async () => (await context.close().catch(() => undefined), await cleanup()) };
    } catch (error) {
      await cleanup();
      throw error;
    }
  }
}

/** Chromium itself when the worker is not root; as root, a launcher that drops to nobody first. */
async function unprivileged(chromiumPath: string, home: string): Promise<string> {
  const profile = path.join(home, 'profile');
  await fs.mkdir(profile, { recursive: true });
  if (process.getuid?.() !== 0) return chromiumPath;
  await fs.chown(profile, UNPRIVILEGED_UID, UNPRIVILEGED_UID);
  await fs.chmod(home, 0o711); // nobody passes through to its profile, and sees nothing else here
  const launcher = path.join(home, 'chromium-as-nobody');
  await fs.writeFile(launcher, `#!/bin/sh\nexec setpriv --reuid=${UNPRIVILEGED_UID} --regid=${UNPRIVILEGED_UID} --clear-groups --inh-caps=-all --bounding-set=-all ${shellQuote(chromiumPath)} "$@"\n`, { mode: 0o755 });
  return launcher;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Width and height from the PNG's IHDR chunk, which always comes right after the signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || !png.subarray(0, 8).equals(PNG_SIGNATURE) || png.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error('Chromium returned a screenshot that is not a PNG');
  }
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** A retried screenshot replaces the file whole; nobody is served half of one. */
async function writeAtomically(file: string, content: Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.incoming`);
  try {
    await fs.writeFile(temporary, content);
    await fs.rename(temporary, file);
  } finally {
    await fs.rm(temporary, { force: true });
  }
}
