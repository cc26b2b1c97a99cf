import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface UidLease {
  uid: number;
  /** Frees the uid for another attempt. */
  release(): void;
}

/** True while a process with this pid exists (EPERM: it exists but is not ours to signal). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Pids of processes whose real uid is `uid` (a scan of /proc). */
export function processesOfUid(uid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const m = /^Uid:\s+(\d+)/m.exec(status);
      if (m && Number(m[1]) === uid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * Hands out uids of a range so that no two attempts on a host ever run as the
 * same uid, across every worker process of the host: a lease is a file named
 * after the uid, created exclusively, holding the leasing worker's pid. A
 * lease of a worker that died (`kill -9`) is taken over once no process of
 * that uid is left (its sandboxes died with it).
 */
export class UidLeases {
  private readonly dir: string;

  constructor(
    stateDir: string,
    private readonly range: readonly [number, number],
  ) {
    this.dir = join(stateDir, 'uids');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  acquire(): UidLease {
    const [first, last] = this.range;
    const size = last - first + 1;
    const start = randomInt(size);
    // Bounded: at most one pass over the range (each step is a file create).
    for (let i = 0; i < Math.min(size, 10_000); i++) {
      const uid = first + ((start + i) % size);
      const file = join(this.dir, String(uid));
      if (this.tryCreate(file) || this.takeOverStale(file, uid)) {
        return { uid, release: () => this.release(file) };
      }
    }
    throw new Error(`no free uid in SHELL_UID_RANGE ${first}-${last}: every one is leased by a running attempt`);
  }

  private tryCreate(file: string): boolean {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private takeOverStale(file: string, uid: number): boolean {
    let holder: number;
    try {
      holder = Number(readFileSync(file, 'utf8'));
    } catch {
      return false;
    }
    if (!Number.isInteger(holder) || holder <= 0 || alive(holder)) return false;
    if (processesOfUid(uid).length > 0) return false;
    try {
      // Still the dead worker's lease (not one another worker just took over)?
      if (Number(readFileSync(file, 'utf8')) !== holder) return false;
      unlinkSync(file);
    } catch {
      return false; // another worker took it over first
    }
    return this.tryCreate(file);
  }

  private release(file: string): void {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
}
