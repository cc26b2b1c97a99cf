/* Swagger UI in a real browser, from an origin that is not localhost. The API listens on the host side of a
 * veth pair (10.253.<n>.1/30); Debian's chromium runs inside a network namespace this suite creates
 * (10.253.<n>.2), driven by playwright-core over pipes, and loads http://10.253.<n>.1:<port>/docs. The
 * namespace has no other route, so the browser can reach nothing but the API. Needs root, iproute2 and
 * chromium (.ci/run installs them); playwright-core never downloads a browser. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { createTestNetns } from '../support/netns';
import type { TestNetns } from '../support/netns';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const COOP_IGNORED = /^The Cross-Origin-Opener-Policy header has been ignored, because the URL's origin was untrustworthy\./;

let stack: TestStack;
let browser: Browser | undefined;
let dir: string;
let origin: string;
let net: TestNetns | undefined;

beforeAll(async () => {
  net = createTestNetns('ui', 253);
  const { name: netnsName, hostSide } = net;

  stack = await startStack('swagger-ui', { workers: false, host: hostSide });
  origin = `http://${hostSide}:${new URL(stack.baseUrl).port}`;

  // playwright-core starts this "browser" and talks to it over inherited pipes (fds 3 and 4), which
  // `ip netns exec` keeps: chromium runs in the namespace, playwright in the test process.
  dir = mkdtempSync(join(tmpdir(), 'swagger-ui-'));
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${netnsName} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await chromium.launch({
    executablePath: wrapper,
    headless: true,
    chromiumSandbox: false,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    timeout: 60_000,
  });
}, 120_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await stack?.stop();
  net?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Observed {
  page: Page;
  problems: string[];
  requests: string[];
}

/** Opens /docs and waits for the operation list; a page that stays blank fails with what the browser reported. */
async function openDocs(o: Observed): Promise<void> {
  await o.page.goto(`${origin}/docs`, { waitUntil: 'load', timeout: 30_000 });
  const rendered = await o.page
    .locator('.opblock')
    .first()
    .waitFor({ state: 'visible', timeout: 20_000 })
    .then(() => true)
    .catch(() => false);
  expect({ rendered, problems: o.problems }).toEqual({ rendered: true, problems: [] });
}

/** A fresh page that records console errors, page errors, CSP violations, failed requests and every URL requested. */
async function openPage(): Promise<Observed> {
  const context = await (browser as Browser).newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    // Helmet's Cross-Origin-Opener-Policy is kept for HTTPS deployments; over plain HTTP Chromium ignores it and says so.
    if (m.type() === 'error' && !COOP_IGNORED.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.exposeFunction('reportCspViolation', (v: string) => problems.push(`CSP violation: ${v}`));
  // Runs in the page (a string: the tests are type-checked without the DOM library).
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => window.reportCspViolation(e.violatedDirective + ' ' + e.blockedURI));`,
  });
  return { page, problems, requests };
}

test('the page is served with a CSP that keeps scripts to the origin and does not upgrade to https', async () => {
  const res = await stack.request('GET', '/docs', { apiKey: null });
  expect(res.status).toBe(200);
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).not.toContain('upgrade-insecure-requests');
  const directives = Object.fromEntries(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name, values.join(' ')]),
  );
  expect(directives).toMatchObject({
    'default-src': "'self'",
    'script-src': "'self'",
    'object-src': "'none'",
    'frame-ancestors': "'self'",
  });
});

test('Swagger UI renders every operation from a non-localhost origin, with no error or CSP violation', async () => {
  const observed = await openPage();
  const { page, problems, requests } = observed;
  await openDocs(observed);

  const paths = await page.locator('.opblock-summary-path').allTextContents();
  const spec = (await stack.request('GET', '/docs-json', { apiKey: null })).body as { paths: Record<string, object> };
  const documented = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map(() => path));
  expect(paths.map((p) => p.replace(/\u200b/g, '')).sort()).toEqual(documented.sort());
  expect(paths.map((p) => p.replace(/\u200b/g, ''))).toContain('/v1/tasks');
  await expect(page.locator('#operations-me-getMe').count()).resolves.toBe(1);

  expect(problems).toEqual([]);
  // Everything the page loaded came from the API's own origin over plain HTTP.
  expect(requests.length).toBeGreaterThan(0);
  expect(requests.filter((u) => !u.startsWith(`${origin}/`))).toEqual([]);
});

test('the CSP still refuses an inline script on the page, and the test sees the violation', async () => {
  const observed = await openPage();
  await openDocs(observed);
  await observed.page.evaluate(`(() => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true';
    document.body.appendChild(s);
  })()`);
  expect(await observed.page.evaluate('window.inlineRan === true')).toBe(false);
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 100 && Date.now() < deadline && !observed.problems.some((p) => p.startsWith('CSP violation: script-src')); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(observed.problems.filter((p) => p.startsWith('CSP violation'))).toEqual([
    expect.stringMatching(/^CSP violation: script-src(-elem)? inline$/),
  ]);
});

test('"Try it out" on GET /v1/me works with an API key entered in the Authorize dialog', async () => {
  const observed = await openPage();
  const { page, problems } = observed;
  await openDocs(observed);

  await page.locator('button.authorize').first().click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  const apiKeyForm = dialog.locator('form', { hasText: 'x-api-key' });
  await apiKeyForm.locator('input').fill(stack.apiKey);
  await apiKeyForm.locator('button.authorize').click();
  await dialog.locator('button.close-modal').click();

  const op = page.locator('#operations-me-getMe');
  await op.locator('.opblock-summary').click();
  await op.locator('button.try-out__btn').click();
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${origin}/v1/me`, { timeout: 30_000 }),
    op.locator('button.execute').click(),
  ]);
  expect(response.status()).toBe(200);
  expect(response.request().headers()['x-api-key']).toBe(stack.apiKey);
  const body = (await response.json()) as { tenant: { slug: string }; platformAdmin: boolean };
  expect(body.tenant.slug).toBe('default');
  expect(body.platformAdmin).toBe(true);
  // The UI shows the answer it got.
  const shown = op.locator('.live-responses-table tbody tr.response').first();
  await shown.waitFor({ state: 'visible', timeout: 10_000 });
  expect((await shown.locator('td.response-col_status').textContent())?.trim()).toBe('200');
  expect(await shown.locator('td.response-col_description').textContent()).toContain('"slug": "default"');
  expect(problems).toEqual([]);
});
