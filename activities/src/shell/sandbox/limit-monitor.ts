import { closeSync, constants, openSync, statfsSync } from 'node:fs';
import type { ShellLimitKey, ShellLimits } from '@task-scheduler/contracts';
import type { RunCgroup } from './cgroup';

const TMPFS_MAGIC = 0x01021994;

/** The file system type of an open descriptor (statfs through /proc/self/fd follows the descriptor, not a path). */
function fstatfsType(fd: number): number {
  return statfsSync(`/proc/self/fd/${fd}`).type;
}
/** Exit codes of a process killed by SIGXCPU and SIGXFSZ (bwrap reports 128 + signal). */
const SIGXCPU_EXIT = 128 + 24;
const SIGXFSZ_EXIT = 128 + 25;

/**
 * Tells which limit an isolated attempt crossed, from the kernel's counters
 * (cgroup OOM kills, refused forks, CPU time) and the fill of its working
 * directory. That directory is a tmpfs of the sandbox's mount namespace:
 * opened once through the sandbox init's root, the open descriptor keeps it
 * readable after the namespace has ended, for the final check.
 */
export class LimitMonitor {
  private workFd: number | null = null;
  /** The sandbox's init, once bwrap has reported it. */
  sandboxPid: number | null = null;

  constructor(
    private readonly cgroup: RunCgroup | null,
    private readonly limits: Required<ShellLimits>,
    private readonly workDir: string,
  ) {}

  /** The limit crossed so far, if any. */
  crossed(): ShellLimitKey | null {
    const events = this.cgroup?.events();
    if (events?.oomKills) return 'memoryMb';
    if (events?.pidsMax) return 'processes';
    if (events && events.cpuUsec >= this.limits.cpuSeconds * 1_000_000) return 'cpuSeconds';
    return this.workdirFull() ? 'workdirMb' : null;
  }

  /** The last check, when the attempt has ended; a process killed by SIGXCPU or SIGXFSZ names its rlimit. */
  final(exitCode: number | null): ShellLimitKey | null {
    const key = this.crossed() ?? (exitCode === SIGXCPU_EXIT ? 'cpuSeconds' : exitCode === SIGXFSZ_EXIT ? 'fileSizeMb' : null);
    this.close();
    return key;
  }

  close(): void {
    if (this.workFd !== null) closeSync(this.workFd);
    this.workFd = null;
  }

  private workdirFull(): boolean {
    if (!this.sandboxPid) return false;
    try {
      if (this.workFd === null) {
        const path = `/proc/${this.sandboxPid}/root${this.workDir}`;
        // No symlink at the end, no blocking open (the task cannot replace the path: its parents are on the
        // read-only root and the directory is a mount point, but the worker is root and takes no chances).
        const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        if (fstatfsType(fd) !== TMPFS_MAGIC) {
          closeSync(fd);
          return false;
        }
        this.workFd = fd;
      }
      const s = statfsSync(`/proc/self/fd/${this.workFd}`);
      return s.blocks > 0 && s.bavail === 0;
    } catch {
      return false; // not mounted yet, or the sandbox is ending
    }
  }
}
