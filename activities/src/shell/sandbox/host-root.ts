import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostRootEntry } from './bwrap-args';
import { ETC_ENTRIES } from './bwrap-args';
import { alive } from './uid-leases';

/** Top-level system paths the sandbox may show, read-only, when the host has them. */
const SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** The host's system directories as they are (merged-/usr systems have symlinks for /bin, /lib, …). */
export function describeHostRoot(): HostRootEntry[] {
  const hostRoot: HostRootEntry[] = [];
  for (const path of SYSTEM_PATHS) {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) hostRoot.push({ path, kind: 'symlink', target: readlinkSync(path) });
    else if (st.isDirectory()) hostRoot.push({ path, kind: 'dir' });
  }
  return hostRoot;
}

/**
 * Copies the /etc entries sandboxes may see into `<stateDir>/etc-<pid>` (symlinks
 * kept as links, `ssl/private` left out), plus a resolv.conf naming
 * SHELL_EGRESS_DNS (queried through the egress filter like any address). Taken at worker start: a change of the
 * host's /etc (new CA certificates) reaches sandboxes at the next start.
 */
export function snapshotEtc(stateDir: string, nameserver: string | undefined): string {
  // One per worker process: another worker of the host may be using its own at this moment.
  const dir = join(stateDir, `etc-${process.pid}`);
  for (const name of readdirSync(stateDir)) {
    const pid = /^etc-(\d+)$/.exec(name)?.[1];
    if (pid && (Number(pid) === process.pid || !alive(Number(pid)))) rmSync(join(stateDir, name), { recursive: true, force: true });
  }
  mkdirSync(dir, { mode: 0o755 });
  for (const name of ETC_ENTRIES) {
    const from = `/etc/${name}`;
    if (!existsSync(from)) continue;
    cpSync(from, join(dir, name), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => !src.startsWith('/etc/ssl/private'),
    });
  }
  writeFileSync(join(dir, 'resolv.conf'), nameserver ? `nameserver ${nameserver}\n` : '# no resolver: set SHELL_EGRESS_DNS\n', {
    mode: 0o644,
  });
  return dir;
}
