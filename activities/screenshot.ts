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
  /** Origins besides the page's own it may load from (the preview server's, where the run's APIs are). */
  allowOrigins?: string[];
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
  /** What is wrong with the page as loaded: HTTP errors of it and its assets, console errors, a blank screen. */
  problems: string[];
}

const MAX_PROBLEMS = 10;
/** A screenshot where at least this share of pixels has one colour shows nothing. */
const ONE_COLOUR_SHARE = 0.999;

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
    const allowedOrigins = new Set([origin, ...(options.allowOrigins ?? []).map((o) => new URL(o).origin)]);
    const problems = new Set<string>();
    const blocked = new Set<string>();
    const note = (problem: string) => problems.size < MAX_PROBLEMS && problems.add(problem.length > 300 ? `${problem.slice(0, 299)}…` : problem);
    await browser.context.route('**/*', (route) => {
      const target = route.request().url();
      const allowed = target.startsWith('data:') || target.startsWith('blob:') || (URL.canParse(target) && allowedOrigins.has(new URL(target).origin));
      if (!allowed && URL.canParse(target)) blocked.add(new URL(target).origin);
      return allowed ? route.continue() : route.abort('blockedbyclient');
    });
    const page = await browser.context.newPage();
    // What a reviewer would see go wrong, gathered while the page loads and settles.
    const answeredWithError = new Set<string>();
    page.on('response', (response) => {
      // A favicon nobody asked for is the browser's own guess, not the page's fault.
      if (response.status() < 400 || (new URL(response.url()).pathname === '/favicon.ico' && response.request().resourceType() === 'other')) return;
      answeredWithError.add(response.url());
      note(`${response.request().method()} ${shortUrl(response.url(), origin)} answered HTTP ${response.status()}`);
    });
    page.on('requestfailed', (request) => {
      const why = request.failure()?.errorText ?? 'failed';
      // Blocked on purpose (said once below), or the abort that follows an error answer (said above).
      if (why.includes('ERR_BLOCKED_BY_CLIENT') || answeredWithError.has(request.url())) return;
      note(`${request.method()} ${shortUrl(request.url(), origin)} failed: ${why}`);
    });
    page.on('console', (message) => {
      // Chromium's own "Failed to load resource" lines repeat what the responses above already say.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) note(`console error: ${message.text()}`);
    });
    page.on('pageerror', (error) => note(`uncaught error: ${error.message.split('\n')[0]}`));
    await page.goto(url, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
    await page.waitForLoadState('networkidle', { timeout: NETWORK_IDLE_CAP_MS }).catch(() => undefined);
    const png = await page.screenshot({ type: 'png', fullPage: false, animations: 'disabled' });
    // The file is what reviewers get, so its own header says what size it is.
    const { width, height } = pngSize(png);
    await writeAtomically(file, png);
    const blank = await oneColour(browser.context, png);
    if (blank) note(`the page shows nothing: ${Math.round(blank.share * 1000) / 10}% of the screenshot is one colour (${blank.colour})`);
    if (blocked.size) note(`it loads from ${[...blocked].slice(0, 3).join(', ')}${blocked.size > 3 ? ' and more' : ''}, outside the preview, which previews may not reach`);
    return { width, height, bytes: png.length, problems: [...problems], ...(browser.unsandboxed ? { unsandboxed: browser.unsandboxed } : {}) };
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

/** `/assets/app.js` on the page's own origin, the whole address elsewhere. */
function shortUrl(address: string, origin: string): string {
  return address.startsWith(`${origin}/`) ? address.slice(origin.length) : address;
}

/** Runs in the page (this project's TypeScript has no DOM types, so it is written as the browser reads it). */
const MOST_COMMON_COLOUR = `async (dataUrl) => {
  const image = new Image();
  image.src = dataUrl;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const drawing = canvas.getContext('2d');
  drawing.drawImage(image, 0, 0);
  const pixels = new Uint32Array(drawing.getImageData(0, 0, canvas.width, canvas.height).data.buffer);
  const counts = new Map();
  for (const pixel of pixels) counts.set(pixel, (counts.get(pixel) || 0) + 1);
  let top = 0;
  let colour = 0;
  for (const [value, count] of counts) if (count > top) { top = count; colour = value; }
  const hex = [colour & 255, (colour >>> 8) & 255, (colour >>> 16) & 255].map((c) => c.toString(16).padStart(2, '0')).join('');
  return { share: top / pixels.length, colour: '#' + hex };
}`;

/**
 * Whether (nearly) every pixel of the screenshot has one colour: decoded by Chromium itself on a canvas, in
 * a blank page of the same confined browser, so no image library is needed.
 */
async function oneColour(context: BrowserContext, png: Buffer): Promise<{ share: number; colour: string } | null> {
  const page = await context.newPage();
  try {
    const dataUrl = `data:image/png;base64,${png.toString('base64')}`;
    const found = (await page.evaluate(`(${MOST_COMMON_COLOUR})(${JSON.stringify(dataUrl)})`)) as { share: number; colour: string };
    return found.share >= ONE_COLOUR_SHARE ? found : null;
  } finally {
    await page.close();
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
