import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';

/** slirp4netns's fixed layout: the sandbox is 10.0.2.100, the host gateway 10.0.2.2 (its DNS forwarder is off). */
export const SLIRP_CIDR = '10.0.2.0/24';

/**
 * Every IPv4 block that is not public unicast, from ipaddr.js's own table —
 * the table the HTTP executor's address guard judges by — so the two cannot
 * drift (a property test compares them address by address).
 */
export function nonPublicIpv4Blocks(): string[] {
  const ranges = (ipaddr.IPv4.prototype as unknown as { SpecialRanges: Record<string, [ipaddr.IPv4, number] | [ipaddr.IPv4, number][]> })
    .SpecialRanges;
  const out: string[] = [];
  for (const value of Object.values(ranges)) {
    const list = Array.isArray(value[0]) ? (value as [ipaddr.IPv4, number][]) : [value as [ipaddr.IPv4, number]];
    for (const [net, bits] of list) out.push(`${ipaddr.IPv4.networkAddressFromCIDR(`${net.toString()}/${bits}`).toString()}/${bits}`);
  }
  return out;
}

/** IPv4 addresses of this host's interfaces: unreachable from a sandbox whatever the allowlist says. */
export function hostIpv4Addresses(): string[] {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4') out.add(a.address);
  }
  return [...out];
}

export interface EgressRuleOptions {
  /** CIDRs reachable although not public (HTTP_ALLOW_CIDRS); IPv4 ones apply to shell egress. */
  allowCidrs: readonly string[];
  /** The worker's own addresses and SHELL_EGRESS_DENY_CIDRS: refused before the allowlist. */
  hostAddresses: readonly string[];
}

const nftSet = (items: readonly string[]): string => `{ ${items.join(', ')} }`;

/**
 * The nftables ruleset loaded into an egress sandbox's network namespace by
 * the worker before the task starts. The task has no capability in that
 * namespace, so it can neither read nor change it. Order matters: the host's
 * own addresses and slirp's host gateway are refused first (the allowlist
 * cannot open them), then allowlisted CIDRs,
 * then every non-public block is refused; IPv6 is refused entirely.
 */
export function egressRuleset(o: EgressRuleOptions): string {
  const allow = o.allowCidrs.filter(
    (c) => ipaddr.isValid(c.split('/')[0] ?? '') && ipaddr.parse(c.split('/')[0] as string).kind() === 'ipv4',
  );
  const lines = [
    'table inet task_egress {',
    '  chain output {',
    '    type filter hook output priority 0; policy drop;',
    '    oifname "lo" accept',
    ...(o.hostAddresses.length ? [`    ip daddr ${nftSet(o.hostAddresses)} reject with icmp type admin-prohibited`] : []),
    `    ip daddr ${SLIRP_CIDR} reject with icmp type admin-prohibited`,
    ...(allow.length ? [`    ip daddr ${nftSet(allow)} accept`] : []),
    `    ip daddr ${nftSet(nonPublicIpv4Blocks())} reject with icmp type admin-prohibited`,
    '    meta nfproto ipv4 accept',
    '    meta nfproto ipv6 reject with icmpv6 type admin-prohibited',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

export interface EgressTools {
  nsenter: string;
  nft: string;
  slirp4netns: string;
}

/** The user-mode network of one sandbox; `close` stops it (it also stops by itself when the worker dies). */
export interface EgressLink {
  /** slirp4netns's pid, so it can be charged to the attempt's cgroup. */
  pid: number | undefined;
  close(): void;
}

function run(file: string, args: string[], input: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs, env: {} });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${file} failed (${code ?? signal}): ${err.trim()}`))));
    child.stdin.end(input);
  });
}

/**
 * Gives a sandbox (by the pid bwrap reported) its filtered network: the
 * ruleset first, then slirp4netns with host loopback disabled, in its own
 * seccomp-filtered sandbox. Resolves once the interface is up.
 */
export async function attachEgress(tools: EgressTools, sandboxPid: number, rules: string): Promise<EgressLink> {
  const netns = `/proc/${sandboxPid}/ns/net`;
  // Never filter or re-route the worker's own network: the sandbox must have a namespace of its own.
  if (readlinkSync(netns) === readlinkSync('/proc/self/ns/net')) {
    throw new Error("the sandbox shares the worker's network namespace; refusing to attach egress to it");
  }
  await run(tools.nsenter, [`--net=${netns}`, '--', tools.nft, '-f', '-'], rules, 5_000);
  // fd 3: slirp writes "1" when the interface is configured; fd 4: closing it stops slirp.
  const slirp = spawn(
    tools.slirp4netns,
    [
      '--configure',
      '--disable-host-loopback',
      '--enable-sandbox',
      '--enable-seccomp',
      // slirp's DNS forwarder would reach the host's resolver, loopback ones included: tasks use SHELL_EGRESS_DNS.
      '--disable-dns',
      '--mtu',
      '65520',
      '--ready-fd',
      '3',
      '--exit-fd',
      '4',
      '--netns-type=path',
      netns,
      'tap0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: {} },
  );
  let err = '';
  slirp.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const close = (): void => {
    (slirp.stdio[4] as NodeJS.WritableStream | null)?.end();
    setTimeout(() => slirp.kill('SIGKILL'), 1_000).unref();
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      close();
      reject(new Error(`slirp4netns did not come up within 5 s: ${err.trim()}`));
    }, 5_000);
    (slirp.stdio[3] as NodeJS.ReadableStream).once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    slirp.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`slirp4netns exited (${code}): ${err.trim()}`));
    });
  });
  slirp.removeAllListeners('exit');
  return { pid: slirp.pid, close };
}
