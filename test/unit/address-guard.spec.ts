/* Pure checks of the SSRF guard: no sockets, resolver injected where a name is looked up. */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { AddressGuard, AddressRefusedError } from '../../activities/src/http/address-guard';

const guard = new AddressGuard();

describe('AddressGuard.check without an allowlist', () => {
  it.each([
    '93.184.216.34',
    '1.1.1.1',
    '8.8.8.8',
    '172.32.0.1', // just outside 172.16.0.0/12
    '100.128.0.1', // just outside 100.64.0.0/10
    '2606:4700::1111',
    '2a00:1450:4001:80b::200e',
    '[2606:4700::1111]',
    '::ffff:93.184.216.34', // IPv4-mapped public
    '64:ff9b::5db8:d822', // NAT64 of 93.184.216.34
    '2002:5db8:d822::1', // 6to4 of 93.184.216.34
  ])('allows public %s', (address) => {
    expect(guard.check(address)).toEqual({ allowed: true });
  });

  it.each([
    ['127.0.0.1', /^address 127\.0\.0\.1 is loopback$/],
    ['127.255.255.254', /loopback/],
    ['::1', /loopback/],
    ['[::1]', /loopback/],
    ['10.0.0.1', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /link-local/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['fc00::1', /unique-local/],
    ['fd00:ec2::254', /unique-local/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['::', /unspecified/],
    ['255.255.255.255', /broadcast/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['ff02::1', /multicast/],
    ['240.0.0.1', /reserved/],
    ['192.0.2.1', /reserved/],
    ['192.0.0.170', /reserved/],
    ['198.18.0.1', /reserved/],
    ['2001:db8::1', /reserved/],
    ['fec0::1', /site-local/],
    ['100::1', /discard/],
    ['2001::1', /Teredo/],
    ['::ffff:127.0.0.1', /loopback \(IPv4-mapped 127\.0\.0\.1\)/],
    ['::ffff:7f00:1', /loopback/],
    ['0:0:0:0:0:ffff:127.0.0.1', /loopback/],
    ['::ffff:169.254.169.254', /link-local \(IPv4-mapped 169\.254\.169\.254\)/],
    ['::ffff:10.1.2.3', /private/],
    ['::ffff:0:7f00:1', /loopback \(IPv4-translated/],
    ['64:ff9b::7f00:1', /loopback \(NAT64 for 127\.0\.0\.1\)/],
    ['64:ff9b::a9fe:a9fe', /link-local \(NAT64 for 169\.254\.169\.254\)/],
    ['64:ff9b:1::1', /local-use NAT64/],
    ['2002:7f00:1::', /loopback \(6to4 for 127\.0\.0\.1\)/],
    ['2002:c0a8:101::1', /private \(RFC 1918\) \(6to4 for 192\.168\.1\.1\)/],
    ['::7f00:1', /IPv4-compatible \(deprecated\) for 127\.0\.0\.1/],
    ['::127.0.0.1', /IPv4-compatible \(deprecated\) for 127\.0\.0\.1/],
    ['::5db8:d822', /IPv4-compatible/],
    ['::93.184.216.34', /IPv4-compatible \(deprecated\) for 93\.184\.216\.34/],
    ['4000::1', /outside global unicast/],
  ])('refuses %s', (address, reason) => {
    const verdict = guard.check(address);
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toMatch(reason);
  });

  it.each(['localhost', 'example.com', '', '0x7f.1', '2130706433', '127.1', '1.2.3.4.5', '[::1'])(
    'refuses %j, which is not a canonical IP literal',
    (input) => {
      expect(guard.check(input)).toEqual({ allowed: false, reason: expect.stringMatching(/not an IP address/) });
    },
  );
});

describe('AddressGuard.check with an allowlist', () => {
  const withAllowlist = new AddressGuard([
    '127.0.0.1/32',
    '10.0.0.0/8',
    '::1/128',
    'fd00:1234::/32',
    '::ffff:192.168.5.0/120',
    '172.20.0.7',
  ]);

  it.each(['127.0.0.1', '::ffff:127.0.0.1', '10.0.0.1', '10.255.255.255', '::1', 'fd00:1234::5', '192.168.5.9', '172.20.0.7'])(
    'allows allowlisted %s',
    (address) => {
      expect(withAllowlist.check(address)).toEqual({ allowed: true });
    },
  );

  it.each([
    '127.0.0.2',
    '192.168.4.255',
    '192.168.6.1',
    'fd00:1235::1',
    '172.20.0.8',
    '169.254.169.254',
    '64:ff9b::7f00:1',
    '2002:7f00:1::',
  ])('still refuses %s outside it', (address) => {
    expect(withAllowlist.check(address).allowed).toBe(false);
  });

  it('keeps allowing public addresses', () => {
    expect(withAllowlist.check('93.184.216.34')).toEqual({ allowed: true });
  });

  it('rejects an entry that is not a CIDR', () => {
    expect(() => new AddressGuard(['10.0.0.0/33'])).toThrow(/not a CIDR/);
    expect(() => new AddressGuard(['intranet'])).toThrow(/not a CIDR/);
    expect(() => new AddressGuard(['0x7f.1/32'])).toThrow(/not a CIDR/);
    expect(() => new AddressGuard(['10.0.0.0/8/8'])).toThrow(/not a CIDR/);
    expect(() => new AddressGuard(['10.0.0.0/'])).toThrow(/not a CIDR/);
  });

  it('reads a dotted IPv6 CIDR the way the kernel does', () => {
    const compat = new AddressGuard(['::127.0.0.0/104']);
    expect(compat.check('::7f00:1')).toEqual({ allowed: true });
    expect(compat.check('::ffff:127.0.0.1').allowed).toBe(false);
  });
});

describe('AddressGuard.lookup', () => {
  type Resolved = { err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number };

  function lookupWith(addresses: LookupAddress[], options: LookupOptions, allow: string[] = []): Promise<Resolved> {
    const calls: LookupOptions[] = [];
    const g = new AddressGuard(allow, {
      resolve: async (_hostname, opts) => {
        calls.push(opts);
        return addresses;
      },
    });
    return new Promise((resolve) => g.lookup('rebind.test', options, (err, address, family) => resolve({ err, address, family })));
  }

  const publicV4: LookupAddress = { address: '93.184.216.34', family: 4 };
  const publicV6: LookupAddress = { address: '2606:4700::1111', family: 6 };
  const loopback: LookupAddress = { address: '127.0.0.1', family: 4 };

  it('answers with the first address when all is false', async () => {
    const r = await lookupWith([publicV4, publicV6], { all: false });
    expect(r).toEqual({ err: null, address: '93.184.216.34', family: 4 });
  });

  it('answers with every address when all is true', async () => {
    const r = await lookupWith([publicV6, publicV4], { all: true });
    expect(r).toEqual({ err: null, address: [publicV6, publicV4], family: undefined });
  });

  it.each([false, true])('fails with ESSRF when any resolved address is refused (all: %s)', async (all) => {
    const r = await lookupWith([publicV4, loopback], { all });
    expect(r.err).toBeInstanceOf(AddressRefusedError);
    expect(r.err).toMatchObject({ code: 'ESSRF', hostname: 'rebind.test', address: '127.0.0.1' });
    expect(r.err?.message).toBe('rebind.test resolved to 127.0.0.1: address 127.0.0.1 is loopback');
  });

  it('refuses a name whose only address is IPv4-mapped link-local', async () => {
    const r = await lookupWith([{ address: '::ffff:169.254.169.254', family: 6 }], { all: true });
    expect(r.err?.message).toMatch(/link-local/);
  });

  it('lets an allowlisted resolved address through', async () => {
    const r = await lookupWith([loopback], { all: false }, ['127.0.0.0/8']);
    expect(r).toEqual({ err: null, address: '127.0.0.1', family: 4 });
  });

  it('passes a resolver failure through', async () => {
    const failure: NodeJS.ErrnoException = Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), { code: 'ENOTFOUND' });
    const g = new AddressGuard([], { resolve: () => Promise.reject(failure) });
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => g.lookup('nope.invalid', {}, (e) => resolve(e)));
    expect(err).toBe(failure);
  });

  it('treats an empty answer as not found', async () => {
    const r = await lookupWith([], { all: true });
    expect(r.err).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('resolves with the system resolver by default and checks the answer', async () => {
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => guard.lookup('localhost', { all: true }, (e) => resolve(e)));
    expect(err).toMatchObject({ code: 'ESSRF' });
    expect(err?.message).toMatch(/^localhost resolved to .+ is loopback$/);
  });
});
