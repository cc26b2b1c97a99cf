/*
 * The HTTP executor against real sockets on loopback; no mocks, no Temporal, no database.
 * A canary server (127.0.0.1, 127.0.0.2 and ::1, one port) counts every connection and
 * byte it receives: after every refused form it must have seen none.
 */
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { AddressGuard } from '../../activities/src/http/address-guard';
import { HttpExecutor } from '../../activities/src/http/http-executor';
import type { HttpRunRequest, HttpRunResult } from '../../activities/src/http/http-executor';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];

function listen(handler: Handler, host: string, port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(handler);
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      servers.push(server);
      resolve(server);
    });
  });
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const canary = { connections: 0, bytes: 0 };
let P = 0;
let ipv6Canary = false;

function watch(server: Server): void {
  server.on('connection', (socket) => {
    canary.connections++;
    socket.on('data', (chunk: Buffer) => {
      canary.bytes += chunk.length;
    });
  });
}

const canaryHandler: Handler = (_req, res) => res.end('canary reached');

/** One port on 127.0.0.1, 127.0.0.2 and (when the host has it) ::1, so every loopback form lands on a canary. */
async function startCanaries(): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const v4 = await listen(canaryHandler, '127.0.0.1');
    const port = portOf(v4);
    try {
      const second = await listen(canaryHandler, '127.0.0.2', port);
      watch(second);
    } catch {
      v4.close();
      servers.splice(servers.indexOf(v4), 1);
      continue;
    }
    watch(v4);
    P = port;
    try {
      watch(await listen(canaryHandler, '::1', port));
      ipv6Canary = true;
    } catch (err) {
      // No IPv6 loopback here (or the port is taken on it): the IPv6 forms are still checked, just not observed.
      console.log(`no canary on [::1]:${port}: ${(err as Error).message}`);
    }
    return;
  }
  throw new Error('could not bind the canary on 127.0.0.1 and 127.0.0.2 with one port');
}

const url = (template: string): string => template.replace(/\{P\}/g, String(P));

let refusedCount = 0;
const refusedForms: string[] = [];

async function expectRefused(executor: HttpExecutor, request: Partial<HttpRunRequest> & { url: string }): Promise<HttpRunResult> {
  const before = { ...canary };
  const r = await executor.run({ method: 'GET', headers: {}, timeoutMs: 3000, ...request });
  expect({ outcome: r.outcome, status: r.status }).toEqual({ outcome: 'refused', status: null });
  expect(r.error).toMatch(/address \S+ is /);
  expect(canary).toEqual(before);
  refusedCount++;
  refusedForms.push(request.url);
  return r;
}

const noAllowlist = new HttpExecutor({ responseCapBytes: 1024, allowCidrs: [] });

beforeAll(startCanaries);

afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

describe('without an allowlist, nothing reaches a non-public address', () => {
  it.each([
    ['http://127.0.0.1:{P}/', /is loopback/],
    ['http://127.1:{P}/', /is loopback/],
    ['http://0x7f000001:{P}/', /is loopback/],
    ['http://2130706433:{P}/', /is loopback/],
    ['http://017700000001:{P}/', /is loopback/],
    ['http://0177.0.0.1:{P}/', /is loopback/],
    ['http://0177.1:{P}/', /is loopback/],
    ['http://0x7f.1:{P}/', /is loopback/],
    ['http://0x7f.0x0.0x0.0x1:{P}/', /is loopback/],
    ['http://0x7F.000.0.01:{P}/', /is loopback/],
    ['http://127.000.000.001:{P}/', /is loopback/],
    ['http://127.0.0.1.:{P}/', /is loopback/],
    ['http://%31%32%37.0.0.1:{P}/', /is loopback/],
    ['http://127\u30020\u30020\u30021:{P}/', /is loopback/], // ideographic full stops
    ['http://\u2460\u2461\u2466.0.0.1:{P}/', /is loopback/], // circled digits, NFKC-mapped
    ['http://127.0.0.2:{P}/', /is loopback/],
    ['http://127.255.255.254:{P}/', /is loopback/],
    ['http://0.0.0.0:{P}/', /is unspecified/],
    ['http://0:{P}/', /is unspecified/],
    ['http://[::1]:{P}/', /is loopback/],
    ['http://[0000:0000:0000:0000:0000:0000:0000:0001]:{P}/', /is loopback/],
    ['http://[::ffff:127.0.0.1]:{P}/', /is loopback \(IPv4-mapped 127\.0\.0\.1\)/],
    ['http://[::ffff:7f00:1]:{P}/', /is loopback \(IPv4-mapped/],
    ['http://[0:0:0:0:0:ffff:127.0.0.1]:{P}/', /is loopback \(IPv4-mapped/],
    ['http://[::ffff:0:127.0.0.1]:{P}/', /is loopback \(IPv4-translated/],
    ['http://[::127.0.0.1]:{P}/', /IPv4-compatible/],
    ['http://[::]:{P}/', /is unspecified/],
    ['http://localhost:{P}/', /localhost resolved to 127\.0\.0\.1: address 127\.0\.0\.1 is loopback/],
    ['http://LOCALHOST:{P}/', /is loopback/],
    ['https://127.0.0.1:{P}/', /is loopback/],
    ['https://localhost:{P}/', /is loopback/],
    ['http://169.254.169.254/latest/meta-data/', /is link-local/],
    ['http://[::ffff:169.254.169.254]/latest/meta-data/', /is link-local \(IPv4-mapped/],
    ['http://[::ffff:a9fe:a9fe]/', /is link-local/],
    ['http://[64:ff9b::a9fe:a9fe]/', /is link-local \(NAT64/],
    ['http://[fd00:ec2::254]/latest/meta-data/', /is unique-local/],
    ['http://10.0.0.1/', /is private/],
    ['http://172.16.0.1/', /is private/],
    ['http://192.168.1.1/', /is private/],
    ['http://[::ffff:10.0.0.1]/', /is private/],
    ['http://100.64.0.1/', /carrier-grade NAT/],
    ['http://[fe80::1]/', /is link-local/],
    ['http://[fc00::1]/', /is unique-local/],
    ['http://[fec0::1]/', /site-local/],
    ['http://224.0.0.1/', /is multicast/],
    ['http://[ff02::1]/', /is multicast/],
    ['http://255.255.255.255/', /is broadcast/],
    ['http://240.0.0.1/', /is reserved/],
    ['http://192.0.0.170/', /is reserved/],
    ['http://[64:ff9b::7f00:1]:{P}/', /is loopback \(NAT64 for 127\.0\.0\.1\)/],
    ['http://[2002:7f00:1::]:{P}/', /is loopback \(6to4 for 127\.0\.0\.1\)/],
    ['http://[2001::1]/', /Teredo/],
  ])('refuses %s', async (template, reason) => {
    const r = await expectRefused(noAllowlist, { url: url(template) });
    expect(r.error).toMatch(reason);
  });

  it('refuses a POST with a body and headers, sending none of it', async () => {
    await expectRefused(noAllowlist, {
      method: 'POST',
      url: url('http://127.0.0.1:{P}/admin'),
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
      body: '{"a":1}',
    });
  });

  it('refuses every local hostname that resolves here', async () => {
    const candidates = [
      'localhost.',
      'LOCALHOST.',
      'foo.localhost',
      'localhost.localdomain',
      'ip6-localhost',
      'ip6-loopback',
      hostname(),
      'runsc',
      'vm',
    ];
    const guard = new AddressGuard();
    const resolving: string[] = [];
    for (const name of new Set(candidates)) {
      try {
        const addresses = await lookup(name, { all: true });
        if (addresses.some((a) => !guard.check(a.address).allowed)) resolving.push(name);
      } catch {
        // Does not resolve on this host: nothing to test.
      }
    }
    console.log(`local hostnames that resolve here: ${resolving.join(', ') || 'none'}`);
    for (const name of resolving) {
      const r = await expectRefused(noAllowlist, { url: `http://${name}:${P}/` });
      expect(r.error).toContain(`${name} resolved to`);
    }
  });

  it('refuses a name with several addresses when one of them is loopback (rebinding)', async () => {
    const rebinding = new HttpExecutor({
      responseCapBytes: 1024,
      allowCidrs: [],
      resolve: async () => [
        { address: '93.184.216.34', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
    });
    const r = await expectRefused(rebinding, { url: url('http://rebind.test:{P}/') });
    expect(r.error).toBe('rebind.test resolved to 127.0.0.1: address 127.0.0.1 is loopback');
    const mapped = new HttpExecutor({
      responseCapBytes: 1024,
      allowCidrs: [],
      resolve: async () => [{ address: '::ffff:127.0.0.1', family: 6 }],
    });
    await expectRefused(mapped, { url: url('http://mapped.test:{P}/') });
  });

  it.each([
    ['http://user:pass@127.0.0.1:{P}/', /must not contain credentials/],
    ['http://127.0.0.1:{P}@127.0.0.1:{P}/', /must not contain credentials/],
    ['ftp://127.0.0.1:{P}/', /only http and https/],
    ['file:///etc/passwd', /only http and https/],
    ['gopher://127.0.0.1:{P}/_GET', /only http and https/],
    ['dict://127.0.0.1:{P}/', /only http and https/],
    ['http://[fe80::1%25lo]:{P}/', /not a valid URL/],
    ['http://256.0.0.1/', /not a valid URL/],
    ['http://0x100000000/', /not a valid URL/],
    ['http://[::1/', /not a valid URL/],
    ['not a url', /not a valid URL/],
  ])('rejects %s as invalid without connecting', async (template, reason) => {
    const before = { ...canary };
    const r = await noAllowlist.run({ method: 'GET', url: url(template), headers: {}, timeoutMs: 3000 });
    expect(r.outcome).toBe('invalid');
    expect(r.error).toMatch(reason);
    expect(r.error).not.toContain('pass@');
    expect(r.finalUrl).not.toContain('pass@');
    expect(canary).toEqual(before);
  });

  describe('redirects from an allowlisted server', () => {
    let R = 0;
    let redirectorHits = 0;
    const routes: Record<string, [number, string]> = {
      '/302-v4': [302, 'http://127.0.0.1:{P}/'],
      '/307-mapped': [307, 'http://[::ffff:127.0.0.1]:{P}/'],
      '/307-localhost': [307, 'http://localhost:{P}/'],
      '/301-metadata': [301, 'http://169.254.169.254/latest/meta-data/'],
      '/308-decimal': [308, 'http://2130706433:{P}/'],
      '/303-v6': [303, 'http://[::1]:{P}/'],
      '/302-scheme-relative': [302, '//127.1:{P}/'],
      '/302-nat64': [302, 'http://[64:ff9b::7f00:1]:{P}/'],
      '/chain': [302, '/302-v4'],
      '/307-v4': [307, 'http://127.0.0.1:{P}/'],
    };
    const redirector = new HttpExecutor({ responseCapBytes: 1024, allowCidrs: ['127.0.0.2/32'] });

    beforeAll(async () => {
      const server = await listen((req, res) => {
        redirectorHits++;
        const route = routes[req.url ?? ''];
        if (!route) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(route[0], { location: url(route[1]) }).end('moved');
      }, '127.0.0.2');
      R = portOf(server);
    });

    it.each([
      ['/302-v4', 'http://127.0.0.1:{P}/', 1],
      ['/307-mapped', 'http://[::ffff:7f00:1]:{P}/', 1],
      ['/307-localhost', 'http://localhost:{P}/', 1],
      ['/301-metadata', 'http://169.254.169.254/latest/meta-data/', 1],
      ['/308-decimal', 'http://127.0.0.1:{P}/', 1],
      ['/303-v6', 'http://[::1]:{P}/', 1],
      ['/302-scheme-relative', 'http://127.0.0.1:{P}/', 1],
      ['/302-nat64', 'http://[64:ff9b::7f00:1]:{P}/', 1],
      ['/chain', 'http://127.0.0.1:{P}/', 2],
    ])('refuses the hop of %s', async (path, target, hops) => {
      const hitsBefore = redirectorHits;
      const r = await expectRefused(redirector, { url: `http://127.0.0.2:${R}${path}` });
      expect(redirectorHits - hitsBefore).toBe(hops);
      expect(r.error).toMatch(new RegExp(`^redirect ${hops} to `));
      expect(r.finalUrl).toBe(url(target));
    });

    it('refuses the hop of a POST redirected with 307, sending the body nowhere', async () => {
      const r = await expectRefused(redirector, {
        method: 'POST',
        url: `http://127.0.0.2:${R}/307-v4`,
        headers: { authorization: 'Bearer x' },
        body: 'payload',
      });
      expect(r.error).toMatch(/^redirect 1 to http:\/\/127\.0\.0\.1:\d+\/: address 127\.0\.0\.1 is loopback$/);
    });
  });
});

describe('the canary', () => {
  it('saw no connection and no byte from any refused form', () => {
    console.log(`refused ${refusedCount} address forms (IPv6 canary ${ipv6Canary ? 'on' : 'off'}):\n  ${refusedForms.join('\n  ')}`);
    expect(refusedCount).toBeGreaterThanOrEqual(30);
    expect(canary).toEqual({ connections: 0, bytes: 0 });
  });

  it('counts what does reach it (so the zero above means something)', async () => {
    const loopbackAllowed = new HttpExecutor({ responseCapBytes: 1024, allowCidrs: ['127.0.0.0/8', '::1/128'] });
    const targets = ['http://127.0.0.1:{P}/', 'http://127.0.0.2:{P}/', ...(ipv6Canary ? ['http://[::1]:{P}/'] : [])];
    for (const target of targets) {
      const r = await loopbackAllowed.run({ method: 'GET', url: url(target), headers: {}, timeoutMs: 3000 });
      expect(r).toMatchObject({ outcome: 'response', status: 200, body: { text: 'canary reached' } });
    }
    expect(canary.connections).toBe(targets.length);
    expect(canary.bytes).toBeGreaterThan(0);
  });
});

describe('requests that are allowed', () => {
  let E = 0;
  let E2 = 0;
  let echoHits = 0;
  const allow = new HttpExecutor({ responseCapBytes: 1024, allowCidrs: ['127.0.0.1/32'], maxRedirects: 3 });
  const run = (path: string, extra: Partial<HttpRunRequest> = {}): Promise<HttpRunResult> =>
    allow.run({ method: 'GET', url: `http://127.0.0.1:${E}${path}`, headers: {}, timeoutMs: 5000, ...extra });

  const echo: Handler = (req, res) => {
    echoHits++;
    void (async () => {
      const body = await readBody(req);
      switch (req.url) {
        case '/big':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('0123456789'.repeat(1000));
          return;
        case '/hang':
          return;
        case '/json-text':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('[1, "two", {"three": 3}]');
          return;
        case '/json-2k':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rows: 'r'.repeat(2000) }));
          return;
        case '/json-70k':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ rows: 'r'.repeat(70_000) }));
          return;
        case '/json-bad':
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"cut": ');
          return;
        case '/json-secret':
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'Bearer s3cr3t-value', n: 1 }));
          return;
        case '/stall-body':
          res.writeHead(200).write('partial');
          return;
        case '/retry-seconds':
          res.writeHead(503, { 'retry-after': '120' }).end();
          return;
        case '/retry-date':
          res.writeHead(429, { 'retry-after': new Date(Date.now() + 60_000).toUTCString() }).end();
          return;
        case '/headers':
          res.writeHead(200, [
            ['Set-Cookie', 'a=1'],
            ['Set-Cookie', 'b=2'],
            ['X-Custom', 'Value'],
          ]);
          res.end();
          return;
        case '/see-other':
          res.writeHead(303, { location: '/echo' }).end();
          return;
        case '/found':
          res.writeHead(302, { location: '/echo' }).end();
          return;
        case '/temporary':
          res.writeHead(307, { location: '/echo' }).end();
          return;
        case '/loop':
          res.writeHead(302, { location: '/loop' }).end('again');
          return;
        case '/cross-origin':
          res.writeHead(302, { location: `http://127.0.0.1:${E2}/echo` }).end();
          return;
        default:
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
      }
    })();
  };

  beforeAll(async () => {
    E = portOf(await listen(echo, '127.0.0.1'));
    E2 = portOf(await listen(echo, '127.0.0.1'));
  });

  it('GETs from an allowlisted address', async () => {
    const r = await run('/echo?x=1');
    expect(r).toMatchObject({
      outcome: 'response',
      status: 200,
      error: null,
      retryAfterMs: null,
      finalUrl: `http://127.0.0.1:${E}/echo?x=1`,
    });
    expect(r.headers['content-type']).toBe('application/json');
    const seen = JSON.parse(r.body.text);
    expect(seen).toMatchObject({ method: 'GET', url: '/echo?x=1', body: '' });
    expect(seen.headers['user-agent']).toBe('task-scheduler-http-executor');
    expect(r.body.truncated).toBe(false);
  });

  it('sends the POST body and headers', async () => {
    const r = await run('/echo', {
      method: 'post',
      headers: { 'Content-Type': 'application/json', 'X-Trace': 'abc', 'User-Agent': 'custom/1' },
      body: '{"hello":"wörld"}',
    });
    const seen = JSON.parse(r.body.text);
    expect(seen).toMatchObject({ method: 'POST', body: '{"hello":"wörld"}' });
    expect(seen.headers).toMatchObject({
      'content-type': 'application/json',
      'x-trace': 'abc',
      'user-agent': 'custom/1',
      'content-length': String(Buffer.byteLength('{"hello":"wörld"}')),
    });
  });

  it('reaches an allowlisted address through a hostname (the lookup path)', async () => {
    const local = new HttpExecutor({ responseCapBytes: 1024, allowCidrs: ['127.0.0.0/8', '::1/128'] });
    const r = await local.run({ method: 'GET', url: `http://localhost:${E}/echo`, headers: {}, timeoutMs: 5000 });
    expect(r).toMatchObject({ outcome: 'response', status: 200 });
    expect(JSON.parse(r.body.text).headers.host).toBe(`localhost:${E}`);
  });

  it('outputs: the status and the JSON body, parsed whatever the content type says', async () => {
    const echoed = await run('/echo?x=1');
    expect(echoed.outputs).toMatchObject({ status: 200, body: { method: 'GET', url: '/echo?x=1', body: '' } });
    expect((await run('/json-text')).outputs).toEqual({ status: 200, body: [1, 'two', { three: 3 }] });
    // The kept body (1 KiB here) is cut; the outputs take up to 64 KiB of it.
    const twoK = await run('/json-2k');
    expect(twoK.body.truncated).toBe(true);
    expect(twoK.outputs).toEqual({ status: 200, body: { rows: 'r'.repeat(2000) } });
  });

  it('outputs: a body that is not JSON, cut JSON, or over 64 KiB is a null body, never a failure', async () => {
    for (const path of ['/big', '/json-bad', '/json-70k']) {
      const r = await run(path);
      expect({ path, outcome: r.outcome, outputs: r.outputs }).toEqual({ path, outcome: 'response', outputs: { status: 200, body: null } });
    }
    expect((await run('/headers')).outputs).toEqual({ status: 200, body: null }); // empty body
    expect((await run('/echo', { method: 'HEAD' })).outputs).toEqual({ status: 200, body: null });
  });

  it('outputs: secret header values in the body are masked', async () => {
    const r = await run('/json-secret', { secretValues: ['Bearer s3cr3t-value'] });
    expect(r.outputs).toEqual({ status: 201, body: { token: '***', n: 1 } });
  });

  it('caps the kept body and counts all of it', async () => {
    const r = await run('/big');
    expect(r.body).toEqual({ text: '0123456789'.repeat(1000).slice(0, 1024), truncated: true, bytes: 10_000 });
  });

  it('returns response headers lower-cased, repeated ones joined', async () => {
    const r = await run('/headers');
    expect(r.headers).toMatchObject({ 'set-cookie': 'a=1, b=2', 'x-custom': 'Value' });
  });

  it.each([
    ['/retry-seconds', 503, 120_000, 120_000],
    ['/retry-date', 429, 58_000, 60_000],
  ])('parses Retry-After from %s', async (path, status, min, max) => {
    const r = await run(path);
    expect(r.status).toBe(status);
    expect(r.retryAfterMs).toBeGreaterThanOrEqual(min);
    expect(r.retryAfterMs).toBeLessThanOrEqual(max);
  });

  it('times out on a server that never answers', async () => {
    const r = await run('/hang', { timeoutMs: 400 });
    expect(r).toMatchObject({ outcome: 'timed_out', status: null, error: 'request exceeded its timeout of 400ms' });
    expect(r.durationMs).toBeGreaterThanOrEqual(390);
    expect(r.durationMs).toBeLessThan(3000);
  });

  it('times out during a body that never ends, keeping what arrived', async () => {
    const r = await run('/stall-body', { timeoutMs: 400 });
    expect(r).toMatchObject({ outcome: 'timed_out', status: 200 });
    expect(r.body.text).toBe('partial');
  });

  it('is cancelled by its signal', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const r = await run('/hang', { signal: controller.signal });
    expect(r).toMatchObject({ outcome: 'cancelled', error: 'request was cancelled' });
    expect(r.durationMs).toBeLessThan(3000);
  });

  it('does not connect when the signal is already aborted', async () => {
    const before = echoHits;
    const r = await run('/echo', { signal: AbortSignal.abort() });
    expect(r.outcome).toBe('cancelled');
    expect(echoHits).toBe(before);
  });

  it.each([
    ['/see-other', 'POST', 'GET', ''],
    ['/found', 'POST', 'GET', ''],
    ['/temporary', 'POST', 'POST', 'data'],
    ['/see-other', 'GET', 'GET', ''],
  ])('follows %s for %s as %s', async (path, method, finalMethod, finalBody) => {
    const r = await run(path, { method, body: method === 'POST' ? 'data' : undefined, headers: { 'content-type': 'text/plain' } });
    expect(r).toMatchObject({ outcome: 'response', status: 200, finalUrl: `http://127.0.0.1:${E}/echo` });
    const seen = JSON.parse(r.body.text);
    expect(seen).toMatchObject({ method: finalMethod, body: finalBody });
    if (finalMethod === 'GET') expect(seen.headers['content-type']).toBeUndefined();
  });

  it('drops credentials on a redirect to another origin', async () => {
    const r = await run('/cross-origin', {
      headers: { authorization: 'Bearer secret', cookie: 'c=1', 'x-keep': 'yes', 'X-Api-Token': 'task-secret' },
      sensitiveHeaders: ['x-api-token'], // a task's secret header travels only to the origin it was configured for
    });
    expect(r.finalUrl).toBe(`http://127.0.0.1:${E2}/echo`);
    const seen = JSON.parse(r.body.text);
    expect(seen.headers).toMatchObject({ 'x-keep': 'yes' });
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers['x-api-token']).toBeUndefined();
  });

  it('stops at the redirect limit and returns the last redirect', async () => {
    const before = echoHits;
    const r = await run('/loop');
    expect(r).toMatchObject({ outcome: 'response', status: 302, error: expect.stringMatching(/limit of 3 redirects/) });
    expect(r.body.text).toBe('again');
    expect(echoHits - before).toBe(4);
  });

  it('reports a closed port as a network error', async () => {
    const closed = await listen(() => undefined, '127.0.0.1');
    const port = portOf(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await allow.run({ method: 'GET', url: `http://127.0.0.1:${port}/`, headers: {}, timeoutMs: 5000 });
    expect(r.outcome).toBe('network_error');
    expect(r.error).toMatch(/ECONNREFUSED/);
  });

  it('reports a name that does not resolve as a network error', async () => {
    const r = await allow.run({ method: 'GET', url: 'http://does-not-exist.invalid/', headers: {}, timeoutMs: 10_000 });
    expect(r.outcome).toBe('network_error');
    expect(r.error).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });

  it('rejects a method Node cannot send as invalid', async () => {
    const r = await run('/echo', { method: 'GE T' });
    expect(r.outcome).toBe('invalid');
  });
});
