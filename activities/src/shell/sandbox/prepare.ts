import { accessSync, chmodSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { ShellLimits } from '@task-scheduler/contracts';
import { removeStaleOutputs } from '../outputs-file';
import { ShellExecutor } from '../shell-executor';
import { describeHostRoot, snapshotEtc } from './host-root';
import { detectCgroups } from './cgroup';
import { egressRuleset, hostIpv4Addresses } from './egress';
import type { Isolation } from './isolation';
import { UidLeases } from './uid-leases';

/** The worker cannot isolate shell tasks; the message says why and what to do. */
export class IsolationUnavailableError extends Error {
  constructor(reason: string) {
    super(
      `shell isolation is not available on this worker: ${reason}. ` +
        'Install what is missing (Debian/Ubuntu: apt-get install bubblewrap slirp4netns nftables util-linux; ' +
        'see docs/security.md for containers), or set SHELL_ISOLATION=none to run shell tasks unisolated (not for untrusted tenants).',
    );
    this.name = 'IsolationUnavailableError';
  }
}

export interface PrepareIsolationOptions {
  stateDir: string;
  uidRange: readonly [number, number];
  /** HTTP_ALLOW_CIDRS: the same exceptions as for HTTP tasks. */
  allowCidrs: readonly string[];
  /** SHELL_EGRESS_DENY_CIDRS: refused to egress tasks like the worker's own addresses. */
  denyCidrs?: readonly string[];
  /** SHELL_EGRESS_DNS: the resolver named in egress sandboxes' resolv.conf. */
  egressDns?: string;
  /** SHELL_CGROUPS: `required` refuses to start without a writable cgroup tree. */
  cgroupsRequired?: boolean;
  bwrapPath?: string;
  /** Search path for the tools; the worker's PATH by default. */
  searchPath?: string;
  defaultLimits: Required<ShellLimits>;
}

function findTool(name: string, searchPath: string, configured?: string): string {
  const candidates = configured ? [configured] : [...searchPath.split(delimiter), '/usr/sbin', '/sbin'].map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  throw new IsolationUnavailableError(configured ? `${configured} is not an executable file` : `${name} was not found on PATH`);
}

/**
 * Finds the tools, prepares the state directory and cgroups, and proves the
 * whole mechanism by running `true` in a sandbox without network and in one
 * with egress. Throws {@link IsolationUnavailableError} when any part fails:
 * a worker never runs tasks with less isolation than it was asked for.
 */
export async function prepareIsolation(o: PrepareIsolationOptions): Promise<{ isolation: Isolation; cgroups: string }> {
  if (process.getuid?.() !== 0) {
    throw new IsolationUnavailableError('the worker is not root; it needs root to give every attempt its own uid, cgroup and network');
  }
  const searchPath = o.searchPath ?? process.env.PATH ?? '';
  const bwrap = findTool('bwrap', searchPath, o.bwrapPath);
  const prlimit = findTool('prlimit', searchPath);
  const egressTools = {
    nsenter: findTool('nsenter', searchPath),
    nft: findTool('nft', searchPath),
    slirp4netns: findTool('slirp4netns', searchPath),
  };
  // 0711: sandboxes (other uids) must reach etc/ through it; the lease directory itself is 0700.
  mkdirSync(o.stateDir, { recursive: true, mode: 0o711 });
  chmodSync(o.stateDir, 0o711);
  const etcDir = snapshotEtc(o.stateDir, o.egressDns);
  // 0711 like the state directory: a sandbox's bwrap (its leased uid) must pass through to bind its own outputs file.
  const outputsDir = join(o.stateDir, 'outputs');
  mkdirSync(outputsDir, { recursive: true, mode: 0o711 });
  chmodSync(outputsDir, 0o711);
  removeStaleOutputs(outputsDir);
  const cgroups = detectCgroups();
  if (!cgroups && o.cgroupsRequired !== false) {
    throw new IsolationUnavailableError(
      'no writable cgroup tree (v2 with memory, pids and cpu, or v1 memory, pids and cpuacct), so memory and processes cannot be limited per attempt; ' +
        'give the worker one, or set SHELL_CGROUPS=optional to bound them per process (rlimits) only',
    );
  }
  const isolation: Isolation = {
    bwrap,
    prlimit,
    egressTools,
    hostRoot: describeHostRoot(),
    etcDir,
    uids: new UidLeases(o.stateDir, o.uidRange),
    outputsDir,
    cgroups,
    egressRules: egressRuleset({ allowCidrs: o.allowCidrs, hostAddresses: [...hostIpv4Addresses(), ...(o.denyCidrs ?? [])] }),
  };
  const probe = new ShellExecutor({
    path: '/usr/bin:/bin',
    outputCapBytes: 4096,
    killGraceMs: 1000,
    isolation,
    defaultLimits: o.defaultLimits,
  });
  for (const network of ['none', 'egress'] as const) {
    const r = await probe.run({ spec: { command: 'true', args: [], network }, timeoutSeconds: 20 });
    if (r.outcome !== 'exited' || r.exitCode !== 0) {
      throw new IsolationUnavailableError(
        `a test sandbox (network ${network}) failed: ${r.error || r.stderr.text.trim() || `exit ${r.exitCode}`}`,
      );
    }
  }
  return { isolation, cgroups: cgroups ? `cgroup ${cgroups.version}` : 'none (rlimits only)' };
}
