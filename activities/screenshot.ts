// A screenshot of a preview for reviewers, taken by headless Chromium through playwright-core. One browser
// per screenshot: slower than a shared one, but nothing outlives the call when a page or the worker misbehaves.
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Screenshot } from '../shared/contracts';

export interface ScreenshotOptions {
  chromiumPath: string;
  viewport: { width: number; height: number };
}

export type ScreenshotFile = Omit<Screenshot, 'url'>;

// Without the networking switches Chromium waits for update and sync servers it cannot reach, and on a
// closed network it hangs; it runs as root in containers, hence no sandbox.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];
const LAUNCH_TIMEOUT_MS = 30_000;
const LOAD_TIMEOUT_MS = 30_000;
/** Pages that keep polling never go network-idle; after this long the page is shot as it is. */
const NETWORK_IDLE_CAP_MS = 3_000;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Loads `url` in a viewport of the given size and saves what it shows as a PNG at `file`. */
export async function takeScreenshot(url: string, file: string, options: ScreenshotOptions): Promise<ScreenshotFile> {
  await fs.access(options.chromiumPath, constants.X_OK).catch(() => {
    throw new Error(`Chromium not found at ${options.chromiumPath}; install the Debian package chromium or set CHROMIUM_PATH`);
  });
  const browser = await chromium.launch({ executablePath: options.chromiumPath, args: CHROMIUM_ARGS, timeout: LAUNCH_TIMEOUT_MS });
  try {
    const page = await browser.newPage({ viewport: options.viewport, deviceScaleFactor: 1 });
    const response = await page.goto(url, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
    if (response && !response.ok()) throw new Error(`${url} answered HTTP ${response.status()}`);
    await page.waitForLoadState('networkidle', { timeout: NETWORK_IDLE_CAP_MS }).catch(() => undefined);
    const png = await page.screenshot({ type: 'png', fullPage: false, animations: 'disabled' });
    // The file is what reviewers get, so its own header says what size it is.
    const { width, height } = pngSize(png);
    await writeAtomically(file, png);
    return { width, height, bytes: png.length };
  } finally {
    await browser.close().catch(() => undefined);
  }
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
