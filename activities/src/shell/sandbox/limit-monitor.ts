import { closeSync, openSync, statfsSync } from 'node:fs';
import type { ShellLimitKey, ShellLimits } from '@task-scheduler/contracts';
import type { RunCgroup } from './cgroup';

const TMPFS_MAGIC = 0x01021994;
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
        if (statfsSync(path).type !== TMPFS_MAGIC) return false;
        this.workFd = openSync(path, 'r');
      }
      const s = statfsSync(`/proc/self/fd/${this.workFd}`);
      return s.blocks > 0 && s.bavail === 0;
    } catch {
      return false; // not mounted yet, or the sandbox is ending
    }
  }
}
