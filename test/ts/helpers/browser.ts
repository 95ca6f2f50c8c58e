import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

/** What a real browser made of a page opened from disk. */
export interface PageCheck {
  /** console messages of type error, and uncaught page errors. */
  errors: string[];
  /** Requests that left the page (it must be self-contained: none). */
  requests: string[];
  canvases: number;
  /** Charts Chart.js drew, by canvas id. */
  charts: string[];
  /** Images, and how many decoded to a picture (naturalWidth > 0). */
  images: number;
  imagesLoaded: number;
  text: string;
}

/** Debian's Chromium (scripts/setup --browser installs it). */
export function chromiumPath(): string {
  return process.env.CHROMIUM ?? execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser']).toString().trim();
}

/** Opens `file` in headless Chromium, offline, and reports what rendered. The browser is closed whatever happens. */
export async function checkPage(file: string): Promise<PageCheck> {
  const browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true,
    // This machine's network is closed: Chromium's own background connections would be refused.
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => { if (!r.url().startsWith('data:') && !r.url().startsWith('file:')) requests.push(r.url()); });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 60000 });
    const seen = await page.evaluate(() => {
      const w = window as unknown as { Chart?: { instances: Record<string, { canvas: HTMLCanvasElement }> } };
      const imgs = [...document.images];
      return {
        canvases: document.querySelectorAll('canvas').length,
        charts: Object.values(w.Chart?.instances ?? {}).map((c) => c.canvas.id).sort(),
        images: imgs.length,
        imagesLoaded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
        text: document.body.innerText,
      };
    });
    return { errors, requests, ...seen };
  } finally {
    await browser.close();
  }
}
