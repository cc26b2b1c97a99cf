import type { ShellLimits } from '@task-scheduler/contracts';
import type { HostRootEntry } from './bwrap-args';
import type { CgroupFactory } from './cgroup';
import type { EgressTools } from './egress';
import type { UidLeases } from './uid-leases';

/** Everything an isolating worker found and prepared at start, shared by its attempts. */
export interface Isolation {
  bwrap: string;
  prlimit: string;
  egressTools: EgressTools;
  hostRoot: readonly HostRootEntry[];
  /** The sandboxes' /etc (a snapshot of the host's, with resolv.conf for egress). */
  etcDir: string;
  uids: UidLeases;
  /** Host directory (mode 0711) holding each attempt's outputs directory (mode 0700, owned by its uid). */
  outputsDir: string;
  /** Null when no cgroup hierarchy is writable: limits then apply per process (rlimits) only. */
  cgroups: CgroupFactory | null;
  /** nftables ruleset of egress sandboxes. */
  egressRules: string;
}

/** Limits to apply when a task (or an old run input) names none. */
export type DefaultShellLimits = Required<ShellLimits>;
