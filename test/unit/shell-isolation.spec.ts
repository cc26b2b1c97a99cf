/* Pure rules of shell isolation: limit resolution, the bwrap argument list, the egress filter's blocks
 * against the HTTP executor's address guard (differential, property-based with fast-check). */
import { AddressGuard, classifyEnd, egressRuleset, nonPublicIpv4Blocks, sandboxArgs } from '@task-scheduler/activities';
import { SHELL_LIMIT_KEYS } from '@task-scheduler/contracts';
import type { ShellLimits } from '@task-scheduler/contracts';
import {
  SHELL_DEFAULT_LIMITS,
  SHELL_LIMIT_BOUNDS,
  isUsableWorkDir,
  limitsAboveCaps,
  parseLimitList,
  resolveShellLimits,
} from '@task-scheduler/core';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';

const limitsArb = (): fc.Arbitrary<ShellLimits> =>
  fc.record(
    Object.fromEntries(SHELL_LIMIT_KEYS.map((k) => [k, fc.integer(SHELL_LIMIT_BOUNDS[k])])) as Record<string, fc.Arbitrary<number>>,
    { requiredKeys: [] },
  ) as fc.Arbitrary<ShellLimits>;

test('resolved limits: the task value or the default, never above the cap', () => {
  fc.assert(
    fc.property(limitsArb(), limitsArb(), (task, caps) => {
      const r = resolveShellLimits(task, caps, SHELL_DEFAULT_LIMITS);
      for (const k of SHELL_LIMIT_KEYS) {
        const cap = caps[k];
        // Never above a cap; a cap binds only what is above it.
        if (cap !== undefined) expect(r[k]).toBeLessThanOrEqual(cap);
        if (task[k] !== undefined && (cap === undefined || (task[k] as number) <= cap)) expect(r[k]).toBe(task[k]);
        if (task[k] === undefined && (cap === undefined || SHELL_DEFAULT_LIMITS[k] <= cap)) expect(r[k]).toBe(SHELL_DEFAULT_LIMITS[k]);
        if (cap !== undefined && (task[k] ?? SHELL_DEFAULT_LIMITS[k]) > cap) expect(r[k]).toBe(cap);
      }
      // A task is refused at create exactly when a value it sets is above a cap.
      const above = limitsAboveCaps(task, caps).map((a) => a.limit);
      expect(above).toEqual(
        SHELL_LIMIT_KEYS.filter((k) => task[k] !== undefined && caps[k] !== undefined && (task[k] as number) > (caps[k] as number)),
      );
    }),
  );
});

test('SHELL_DEFAULT_LIMITS parses named limits and refuses unknown names and out-of-range values', () => {
  expect(parseLimitList('memoryMb=256, processes=64')).toEqual({ ...SHELL_DEFAULT_LIMITS, memoryMb: 256, processes: 64 });
  expect(() => parseLimitList('memory=256')).toThrow(/memoryMb/);
  expect(() => parseLimitList('processes=1')).toThrow(/between 8 and/);
  expect(() => parseLimitList('cpuSeconds=-1')).toThrow();
});

test('working directories: absolute, no dot segments, never a system directory', () => {
  for (const ok of ['/work', '/srv/job', '/home/task', '/data/x/y', '/usrx']) expect(isUsableWorkDir(ok)).toBe(true);
  for (const bad of [
    '/',
    'work',
    '/usr',
    '/usr/local',
    '/etc/x',
    '/proc',
    '/tmp',
    '/tmp/a',
    '/lib64/x',
    '/work/../etc',
    '/a/./b',
    '/dev/shm',
    '/run/task-outputs',
    '/run/task-outputs/x',
  ])
    expect(isUsableWorkDir(bad)).toBe(false);
});

test("bwrap arguments: the attempt's outputs file is the one host path bound writable, before the root is made read-only", () => {
  const args = sandboxArgs({
    hostRoot: [{ path: '/usr', kind: 'dir' }],
    etcDir: '/run/task-scheduler/etc',
    workDir: '/work',
    outputsFile: '/run/task-scheduler/outputs/1-ab/outputs',
    tmpfsBytes: 1024 * 1024,
    infoFd: 3,
    blockFd: 4,
  });
  const writable = args.flatMap((a, i) => (a === '--bind' ? [[args[i + 1], args[i + 2]]] : []));
  expect(writable).toEqual([['/run/task-scheduler/outputs/1-ab/outputs', '/run/task-outputs/outputs']]);
  expect(args.indexOf('--bind')).toBeLessThan(args.lastIndexOf('--remount-ro'));
});

test('bwrap arguments: every namespace, no nested user namespaces, read-only root, no host data, fds for the handshake', () => {
  const args = sandboxArgs({
    hostRoot: [
      { path: '/usr', kind: 'dir' },
      { path: '/bin', kind: 'symlink', target: 'usr/bin' },
    ],
    etcDir: '/run/task-scheduler/etc',
    workDir: '/work',
    tmpfsBytes: 1024 * 1024,
    infoFd: 3,
    blockFd: 4,
  });
  const text = args.join(' ');
  for (const flag of [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup',
    '--unshare-net',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
  ]) {
    expect(args).toContain(flag);
  }
  expect(text).toContain('--ro-bind /usr /usr');
  expect(text).toContain('--symlink usr/bin /bin');
  expect(text).toContain('--ro-bind /run/task-scheduler/etc /etc');
  expect(text).toContain('--size 1048576 --tmpfs /work');
  expect(text).toContain('--remount-ro /');
  expect(text).toContain('--info-fd 3 --block-fd 4');
  // Nothing of the host is bound but the system directories and the /etc snapshot.
  const binds = args.flatMap((a, i) => (a === '--ro-bind' || a === '--bind' ? [args[i + 1]] : []));
  expect(binds).toEqual(['/usr', '/run/task-scheduler/etc']);
  // The remount comes after every mount, or later mounts would be writable.
  expect(args.lastIndexOf('--remount-ro')).toBeGreaterThan(args.lastIndexOf('--tmpfs'));
});

function inBlocks(addr: ipaddr.IPv4, blocks: string[]): boolean {
  return blocks.some((b) => addr.match(ipaddr.parseCIDR(b) as [ipaddr.IPv4, number]));
}

test('differential: the egress filter refuses exactly the IPv4 addresses the HTTP address guard refuses', () => {
  const guard = new AddressGuard([]);
  const blocks = nonPublicIpv4Blocks();
  const byte = fc.integer({ min: 0, max: 255 });
  // Random addresses, plus addresses at the edges of every block, where off-by-one errors live.
  const edges = blocks.flatMap((b) => {
    const first = ipaddr.IPv4.networkAddressFromCIDR(b).toByteArray();
    const last = ipaddr.IPv4.broadcastAddressFromCIDR(b).toByteArray();
    const n = (x: number[]): number => ((x[0] << 24) >>> 0) + (x[1] << 16) + (x[2] << 8) + x[3];
    return [n(first) - 1, n(first), n(last), n(last) + 1].filter((v) => v >= 0 && v <= 0xffffffff);
  });
  const edgeArb = fc.constantFrom(...edges).map((v) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  fc.assert(
    fc.property(fc.oneof(fc.tuple(byte, byte, byte, byte), edgeArb), (parts) => {
      const a = new ipaddr.IPv4(parts);
      expect(inBlocks(a, blocks)).toBe(!guard.check(a.toString()).allowed);
    }),
    { numRuns: 20_000 },
  );
});

test('the egress filter refuses the addresses of the issue: loopback, private, link-local, metadata, CGNAT, multicast', () => {
  const blocks = nonPublicIpv4Blocks();
  for (const a of [
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '10.0.2.2',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '0.0.0.0',
    '255.255.255.255',
  ]) {
    expect(inBlocks(ipaddr.IPv4.parse(a), blocks)).toBe(true);
  }
  for (const a of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '11.0.0.1'])
    expect(inBlocks(ipaddr.IPv4.parse(a), blocks)).toBe(false);
});

test('egress ruleset: host addresses and the slirp gateway refused before the allowlist; IPv6 refused; default drop', () => {
  const rules = egressRuleset({ allowCidrs: ['10.20.0.0/16', 'fd00::/8'], hostAddresses: ['127.0.0.1', '192.0.2.2'] });
  const lines = rules.split('\n').map((l) => l.trim());
  const at = (s: string): number => lines.findIndex((l) => l.includes(s));
  expect(lines).toContain('type filter hook output priority 0; policy drop;');
  expect(at('{ 127.0.0.1, 192.0.2.2 } reject')).toBeGreaterThan(-1);
  expect(at('{ 127.0.0.1, 192.0.2.2 } reject')).toBeLessThan(at('{ 10.20.0.0/16 } accept'));
  expect(at('10.0.2.0/24 reject')).toBeLessThan(at('{ 10.20.0.0/16 } accept'));
  expect(rules).not.toContain('dport 53'); // no DNS exception: slirp's forwarder is off
  expect(at('{ 10.20.0.0/16 } accept')).toBeLessThan(at('0.0.0.0/8'));
  expect(rules).not.toContain('fd00::/8'); // IPv6 allowlist entries do not apply: the sandbox has no IPv6
  expect(lines).toContain('meta nfproto ipv6 reject with icmpv6 type admin-prohibited');
});

describe('how an attempt ended', () => {
  const base = {
    stoppedAs: 'exited' as const,
    failure: null,
    crossed: null,
    isolated: true,
    sandboxStarted: true,
    exitCode: 0,
    signal: null,
    stderr: '',
    file: 'job',
    limits: SHELL_DEFAULT_LIMITS,
  };
  test('a crossed limit names itself, unless a timeout or cancel came first', () => {
    expect(classifyEnd({ ...base, exitCode: 137, crossed: 'memoryMb' })).toEqual({
      outcome: 'resource_limit',
      error: `resource_limit: memory (the attempt reached its memory limit of ${SHELL_DEFAULT_LIMITS.memoryMb} MiB and was ended)`,
      resourceLimit: 'memory',
    });
    expect(classifyEnd({ ...base, stoppedAs: 'resource_limit', crossed: 'processes' }).resourceLimit).toBe('processes');
    expect(classifyEnd({ ...base, stoppedAs: 'timed_out', crossed: 'cpuSeconds' })).toEqual({
      outcome: 'timed_out',
      error: null,
      resourceLimit: null,
    });
    expect(classifyEnd({ ...base, stoppedAs: 'cancelled', crossed: 'memoryMb' }).outcome).toBe('cancelled');
  });
  test('a sandbox that never started is an isolation failure with bwrap’s words; an unknown command a spawn error', () => {
    expect(classifyEnd({ ...base, sandboxStarted: false, exitCode: 1, stderr: 'bwrap: No permissions to create new namespace\n' })).toEqual(
      {
        outcome: 'isolation_failed',
        error: 'the sandbox could not be set up: bwrap: No permissions to create new namespace',
        resourceLimit: null,
      },
    );
    expect(classifyEnd({ ...base, exitCode: 1, stderr: 'bwrap: execvp job: No such file or directory\n' })).toMatchObject({
      outcome: 'spawn_error',
    });
    // Unisolated, a start failure is a spawn error.
    expect(classifyEnd({ ...base, isolated: false, sandboxStarted: false, failure: 'cannot start "x": ENOENT' }).outcome).toBe(
      'spawn_error',
    );
    // An ordinary exit stays an exit.
    expect(classifyEnd({ ...base, exitCode: 3 })).toEqual({ outcome: 'exited', error: null, resourceLimit: null });
  });
});
