import { promises as dns } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;
type Address = IPv4 | IPv6;
type Cidr = [Address, number];

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

/** Resolves a hostname to every address it has; `dns.lookup` with `all: true` by default. */
export type HostResolver = (hostname: string, options: LookupOptions) => Promise<LookupAddress[]>;

export interface AddressGuardDeps {
  /** Replaces the system resolver, e.g. to simulate a name with several addresses in tests. */
  resolve?: HostResolver;
}

/** Raised through the socket's lookup when a resolved address may not be reached. */
export class AddressRefusedError extends Error {
  readonly code = 'ESSRF';

  constructor(
    readonly hostname: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(hostname === address ? reason : `${hostname} resolved to ${address}: ${reason}`);
    this.name = 'AddressRefusedError';
  }
}

// ipaddr.js range names, as a reader of a run's error should see them. Names
// missing here (ipaddr.js adds ranges over time) are shown as they are.
const RANGE_WORDS: Record<string, string> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT shared space (100.64.0.0/10)',
  private: 'private (RFC 1918)',
  reserved: 'reserved',
  benchmarking: 'reserved for benchmarking',
  amt: 'AMT relay anycast',
  as112: 'an AS112 DNS sink',
  as112v6: 'an AS112 DNS sink',
  uniqueLocal: 'unique-local (fc00::/7)',
  deprecatedSiteLocal: 'site-local (deprecated, fec0::/10)',
  discard: 'discard-only (100::/64)',
  teredo: 'a Teredo tunnel address',
  deprecatedOrchid: 'ORCHID',
  orchid2: 'ORCHID',
  droneRemoteIdProtocolEntityTags: 'a drone remote ID tag',
  segmentRouting: 'an SRv6 segment ID',
};

const GLOBAL_UNICAST_V6: Cidr = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN: Cidr = ipaddr.parseCIDR('64:ff9b::/96');

function v4FromWords(high: number, low: number): IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/**
 * Rewrites a dotted IPv4 tail of an IPv6 literal as two hex groups. ipaddr.js reads
 * `::a.b.c.d` as IPv4-mapped (`::ffff:a.b.c.d`), but it is the IPv4-compatible
 * `::a.b.c.d` — the form inet_ntop prints for it — so the guard would judge another
 * address than the one the socket connects to.
 */
function hexTail(v6: string): string {
  const zoneAt = v6.indexOf('%');
  const [addr, zone] = zoneAt === -1 ? [v6, ''] : [v6.slice(0, zoneAt), v6.slice(zoneAt)];
  const colonAt = addr.lastIndexOf(':');
  const tail = addr.slice(colonAt + 1);
  if (!tail.includes('.')) return v6;
  const [a, b, c, d] = tail.split('.').map(Number);
  return `${addr.slice(0, colonAt + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}${zone}`;
}

function parseLiteral(literal: string): Address {
  const family = isIP(literal);
  if (family === 0) throw new Error(`"${literal}" is not an IP literal`);
  return ipaddr.parse(family === 6 ? hexTail(literal) : literal);
}

/**
 * Parses `address/bits` or a bare address (one host). Only canonical IP literals
 * are accepted, like the addresses the guard is asked about. IPv4-mapped CIDRs
 * (`::ffff:10.0.0.0/104`) are kept as IPv4 so they match what the kernel connects to.
 */
function parseAllowEntry(entry: string): Cidr {
  const [text, bitsText, ...rest] = entry.trim().split('/');
  let addr: Address;
  try {
    if (rest.length > 0) throw new Error('more than one "/"');
    addr = parseLiteral(text);
  } catch {
    throw new Error(`allowlist entry "${entry}" is not a CIDR (e.g. 10.0.0.0/8, ::1/128)`);
  }
  const maxBits = addr.kind() === 'ipv4' ? 32 : 128;
  const bits = bitsText === undefined ? maxBits : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= maxBits)) throw new Error(`allowlist entry "${entry}" is not a CIDR (e.g. 10.0.0.0/8, ::1/128)`);
  if (addr.kind() === 'ipv6' && (addr as IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(addr as IPv6).toIPv4Address(), bits - 96];
  }
  return [addr, bits];
}

/**
 * Decides which addresses an outbound HTTP request may connect to: public
 * unicast only, unless an address is inside an allowlisted CIDR. IPv6 forms
 * that carry an IPv4 address (IPv4-mapped, IPv4-translated, NAT64 64:ff9b::/96,
 * 6to4) are judged by the IPv4 address they carry; other IPv6 addresses must
 * be in the global unicast block 2000::/3, which also shuts out the deprecated
 * IPv4-compatible form `::a.b.c.d`.
 *
 * `lookup` is meant to be given to `http.request`, so the address the socket
 * connects to is the one that was checked: a name that resolves to a public
 * address when validated and to 127.0.0.1 when connecting is not a bypass.
 */
export class AddressGuard {
  private readonly allow: Cidr[];
  private readonly resolve: HostResolver;

  constructor(allowCidrs: readonly string[] = [], deps: AddressGuardDeps = {}) {
    this.allow = allowCidrs.map(parseAllowEntry);
    this.resolve = deps.resolve ?? ((hostname, options) => dns.lookup(hostname, { ...options, all: true }));
  }

  /** Judges one IP literal (IPv6 with or without brackets). Anything that is not an IP literal is refused. */
  check(address: string): AddressVerdict {
    const literal = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
    let addr: Address;
    try {
      addr = parseLiteral(literal);
    } catch {
      return { allowed: false, reason: `"${address}" is not an IP address` };
    }
    if (this.isAllowlisted(addr)) return { allowed: true };
    if (addr.kind() === 'ipv4') return this.judgeV4(literal, addr as IPv4, null);
    return this.judgeV6(literal, addr as IPv6);
  }

  /**
   * A `net.LookupFunction`: resolves every address of `hostname`, and fails
   * with an {@link AddressRefusedError} if any one of them is refused, so a
   * connection attempt can fall back to no address that was not checked.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const opts: LookupOptions = options ?? {};
    this.resolve(hostname, opts).then(
      (addresses) => {
        if (addresses.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
          err.code = 'ENOTFOUND';
          callback(err, '');
          return;
        }
        for (const { address } of addresses) {
          const verdict = this.check(address);
          if (!verdict.allowed) {
            callback(new AddressRefusedError(hostname, address, verdict.reason), '');
            return;
          }
        }
        if (opts.all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };

  private isAllowlisted(addr: Address): boolean {
    const candidates: Address[] = [addr];
    if (addr.kind() === 'ipv6' && (addr as IPv6).isIPv4MappedAddress()) candidates.push((addr as IPv6).toIPv4Address());
    return candidates.some((a) => this.allow.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits)));
  }

  private judgeV4(shown: string, addr: IPv4, via: string | null): AddressVerdict {
    const range = addr.range();
    if (range === 'unicast') return { allowed: true };
    const words = RANGE_WORDS[range] ?? range;
    const reason = via === null ? `address ${shown} is ${words}` : `address ${shown} is ${words} (${via} ${addr.toString()})`;
    return { allowed: false, reason };
  }

  private judgeV6(shown: string, addr: IPv6): AddressVerdict {
    const range: string = addr.range();
    const p = addr.parts;
    switch (range) {
      case 'ipv4Mapped':
        return this.judgeV4(shown, addr.toIPv4Address(), 'IPv4-mapped');
      case 'rfc6145':
        return this.judgeV4(shown, v4FromWords(p[6], p[7]), 'IPv4-translated');
      case '6to4':
        return this.judgeV4(shown, v4FromWords(p[1], p[2]), '6to4 for');
      case 'rfc6052':
        // Only the well-known /96 has a fixed place for the IPv4 address; the local-use /48 is site-specific.
        if (addr.match(NAT64_WELL_KNOWN)) return this.judgeV4(shown, v4FromWords(p[6], p[7]), 'NAT64 for');
        return { allowed: false, reason: `address ${shown} is in the local-use NAT64 prefix 64:ff9b:1::/48` };
      case 'unicast':
        break;
      default:
        return { allowed: false, reason: `address ${shown} is ${RANGE_WORDS[range] ?? range}` };
    }
    if (addr.match(GLOBAL_UNICAST_V6)) return { allowed: true };
    if (p.slice(0, 6).every((w) => w === 0)) {
      return {
        allowed: false,
        reason: `address ${shown} is IPv4-compatible (deprecated) for ${v4FromWords(p[6], p[7]).toString()}`,
      };
    }
    return { allowed: false, reason: `address ${shown} is outside global unicast space (2000::/3)` };
  }
}
