import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the kernel counted for one attempt's cgroup. */
export interface CgroupEvents {
  /** Processes the OOM killer ended because the memory limit was reached. */
  oomKills: number;
  /** Forks refused because the process limit was reached. */
  pidsMax: number;
  /** CPU time of all the attempt's processes, microseconds. */
  cpuUsec: number;
}

/** The cgroup (v2) or cgroups (v1: memory, pids, cpuacct) of one attempt. */
export interface RunCgroup {
  /** Moves a process (and so everything it forks later) into the attempt's cgroups. */
  add(pid: number): void;
  events(): CgroupEvents;
  pids(): number[];
  /** SIGKILLs what is left, waits briefly for it to go and removes the cgroups. */
  remove(): Promise<void>;
}

export interface CgroupLimitValues {
  memoryBytes: number;
  pids: number;
}

/** Makes cgroups for attempts under the worker's own cgroup. */
export interface CgroupFactory {
  readonly version: 'v1' | 'v2';
  create(name: string, limits: CgroupLimitValues): RunCgroup;
}

const MOUNT = '/sys/fs/cgroup';

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function counter(text: string, key: string): number {
  const m = new RegExp(`^${key}\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function pidsIn(files: string[]): number[] {
  const out = new Set<number>();
  for (const f of files) {
    for (const line of read(f).split('\n')) if (line) out.add(Number(line));
  }
  return [...out];
}

async function removeDirs(dirs: string[], procsFiles: string[]): Promise<void> {
  // Bounded: about 2 s for the kernel to reap what was killed.
  for (let i = 0; i < 40; i++) {
    const left = pidsIn(procsFiles);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // still busy: left for the kernel's release of the last process; harmless and empty
    }
  }
}

/**
 * Removes attempt cgroups that a killed worker left behind: empty, and older
 * than a minute (a younger one may belong to an attempt another worker is
 * just starting).
 */
function sweep(dir: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('attempt-'));
  } catch {
    return;
  }
  for (const name of names) {
    const d = join(dir, name);
    try {
      if (Date.now() - statSync(d).mtimeMs > 60_000 && pidsIn([join(d, 'cgroup.procs')]).length === 0) rmdirSync(d);
    } catch {
      // in use, or gone meanwhile
    }
  }
}

/** Paths of the calling process's cgroups, per v1 controller name, and `''` for v2. */
function ownCgroups(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of read('/proc/self/cgroup').split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers === undefined || path === undefined) continue;
    for (const c of controllers.split(',')) out.set(c, path);
  }
  return out;
}

function v2Factory(): CgroupFactory | null {
  const own = ownCgroups().get('');
  if (own === undefined || !existsSync(join(MOUNT, 'cgroup.controllers'))) return null;
  const controllers = read(join(MOUNT, own, 'cgroup.controllers')).split(/\s+/);
  if (!['memory', 'pids', 'cpu'].every((c) => controllers.includes(c))) return null;
  const base = join(MOUNT, own);
  const runs = join(base, 'task-scheduler-runs');
  try {
    // "No internal processes": a cgroup that hands controllers to children holds no processes itself,
    // so the worker moves into a leaf of its own first (unless it is at the root).
    if (own !== '/') {
      mkdirSync(join(base, 'task-scheduler-worker'), { recursive: true });
      writeFileSync(join(base, 'task-scheduler-worker', 'cgroup.procs'), String(process.pid));
    }
    writeFileSync(join(base, 'cgroup.subtree_control'), '+memory +pids +cpu');
    mkdirSync(runs, { recursive: true });
    writeFileSync(join(runs, 'cgroup.subtree_control'), '+memory +pids +cpu');
  } catch {
    return null;
  }
  sweep(runs);
  return {
    version: 'v2',
    create(name, limits) {
      const dir = join(runs, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
      writeFileSync(join(dir, 'pids.max'), String(limits.pids));
      const procs = join(dir, 'cgroup.procs');
      return {
        add: (pid) => writeFileSync(procs, String(pid)),
        events: () => ({
          oomKills: counter(read(join(dir, 'memory.events')), 'oom_kill'),
          pidsMax: counter(read(join(dir, 'pids.events')), 'max'),
          cpuUsec: counter(read(join(dir, 'cpu.stat')), 'usage_usec'),
        }),
        pids: () => pidsIn([procs]),
        remove: async () => {
          if (existsSync(join(dir, 'cgroup.kill'))) {
            try {
              writeFileSync(join(dir, 'cgroup.kill'), '1');
            } catch {
              // fall back to killing one by one
            }
          }
          await removeDirs([dir], [procs]);
        },
      };
    },
  };
}

function v1Factory(): CgroupFactory | null {
  const own = ownCgroups();
  const dirs: Record<'memory' | 'pids' | 'cpuacct', string> = { memory: '', pids: '', cpuacct: '' };
  for (const c of ['memory', 'pids', 'cpuacct'] as const) {
    const path = own.get(c);
    const mount = join(MOUNT, c);
    if (path === undefined || !existsSync(join(mount, 'cgroup.procs'))) return null;
    dirs[c] = join(mount, path, 'task-scheduler-runs');
    try {
      mkdirSync(dirs[c], { recursive: true });
    } catch {
      return null;
    }
    sweep(dirs[c]);
  }
  return {
    version: 'v1',
    create(name, limits) {
      const mem = join(dirs.memory, name);
      const pids = join(dirs.pids, name);
      const cpu = join(dirs.cpuacct, name);
      for (const d of [mem, pids, cpu]) mkdirSync(d);
      writeFileSync(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Swap counts as memory: the limit is not a limit if the attempt may swap past it.
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) {
        try {
          writeFileSync(join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
        } catch {
          // swap accounting off on this kernel
        }
      }
      writeFileSync(join(pids, 'pids.max'), String(limits.pids));
      const procsFiles = [mem, pids, cpu].map((d) => join(d, 'cgroup.procs'));
      return {
        add: (pid) => {
          for (const f of procsFiles) writeFileSync(f, String(pid));
        },
        events: () => ({
          oomKills: counter(read(join(mem, 'memory.oom_control')), 'oom_kill'),
          pidsMax: counter(read(join(pids, 'pids.events')), 'max'),
          cpuUsec: Math.floor(Number(read(join(cpu, 'cpuacct.usage')).trim() || 0) / 1000),
        }),
        pids: () => pidsIn(procsFiles),
        remove: () => removeDirs([mem, pids, cpu], procsFiles),
      };
    },
  };
}

/**
 * Finds a writable cgroup hierarchy for attempts: v2 with the memory, pids
 * and cpu controllers, else v1 with memory, pids and cpuacct; null when
 * neither can be written (then only per-process rlimits bound an attempt).
 */
export function detectCgroups(): CgroupFactory | null {
  return v2Factory() ?? v1Factory();
}
