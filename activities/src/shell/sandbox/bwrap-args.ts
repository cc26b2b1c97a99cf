import { SANDBOX_OUTPUTS_FILE } from '@task-scheduler/core';

/** One top-level entry of the host's root that the sandbox gets read-only: a directory bound, or a symlink re-created. */
export type HostRootEntry = { path: string; kind: 'dir' } | { path: string; kind: 'symlink'; target: string };

/**
 * Files of the host's /etc that programs need (users, name resolution, TLS
 * roots, the dynamic linker, `alternatives` links such as awk). Nothing else
 * of /etc is shown: it may hold credentials of the host's own services.
 */
export const ETC_ENTRIES = [
  'passwd',
  'group',
  'nsswitch.conf',
  'hosts',
  'host.conf',
  'services',
  'protocols',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'alternatives',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'timezone',
  'mime.types',
  'os-release',
  'debian_version',
  'bash.bashrc',
  'profile',
  'inputrc',
] as const;

export interface SandboxArgsOptions {
  /** System directories and links of the host root (see `describeHostRoot`). */
  hostRoot: readonly HostRootEntry[];
  /** The worker's snapshot of the host's /etc entries of {@link ETC_ENTRIES} (see `snapshotEtc`). */
  etcDir: string;
  /** Where the private working directory appears inside the sandbox. */
  workDir: string;
  /** The attempt's outputs file on the host, bound read-write at SANDBOX_OUTPUTS_FILE. */
  outputsFile?: string;
  /** Size of the working directory and of /tmp (each), bytes. */
  tmpfsBytes: number;
  /** File descriptors the worker gave bwrap: it writes the sandbox's pid to `infoFd`, and waits on `blockFd`. */
  infoFd: number;
  blockFd: number;
}

/**
 * The bubblewrap arguments of one attempt (without the command). Fresh user,
 * PID, mount, IPC, UTS, cgroup and network namespaces; no
 * nested user namespaces; a read-only root built from the host's system
 * directories only (no /home, /root, /run, /var, /srv, /opt, /work: nothing of
 * the worker's data and no Unix sockets of its services); private /proc,
 * /dev, /tmp and working directory, the last two size-capped tmpfs; the
 * attempt's outputs file, the one writable host path; a new
 * session (no terminal injection); and the sandbox dies with the worker.
 */
export function sandboxArgs(o: SandboxArgsOptions): string[] {
  const args = [
    '--die-with-parent',
    '--new-session',
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup',
    // Always a network namespace of its own: for egress the worker gives it slirp4netns's tap device.
    '--unshare-net',
    '--disable-userns',
    '--cap-drop',
    'ALL',
    '--hostname',
    'sandbox',
  ];
  for (const e of o.hostRoot) {
    if (e.kind === 'dir') args.push('--ro-bind', e.path, e.path);
    else args.push('--symlink', e.target, e.path);
  }
  // One bind of a prepared copy, not one per file: each mount costs the attempt's start time.
  args.push('--ro-bind', o.etcDir, '/etc');
  const tmpfs = (path: string, perms: string): string[] => ['--perms', perms, '--size', String(o.tmpfsBytes), '--tmpfs', path];
  args.push(
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    // bwrap's /dev is a writable tmpfs: cap /dev/shm like /tmp and make the rest read-only.
    ...tmpfs('/dev/shm', '1777'),
    '--remount-ro',
    '/dev',
    ...tmpfs('/tmp', '1777'),
    ...tmpfs(o.workDir, '0700'),
    // The file alone, not a directory: the task cannot put more files (or links) on the host's disk.
    ...(o.outputsFile ? ['--bind', o.outputsFile, SANDBOX_OUTPUTS_FILE] : []),
    '--remount-ro',
    '/',
    '--chdir',
    o.workDir,
    '--info-fd',
    String(o.infoFd),
    '--block-fd',
    String(o.blockFd),
  );
  return args;
}
