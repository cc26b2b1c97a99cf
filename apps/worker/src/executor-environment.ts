import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Resolves SHELL_RUN_AS to the uid/gid shell tasks run as. A task running as
 * the worker's own user could read the worker's memory and environment
 * (`/proc/<pid>/environ`): `auto` therefore drops to `nobody` whenever the
 * worker runs as root.
 */
export function resolveRunAs(setting: string, currentUid: number | undefined = process.getuid?.()): { uid: number; gid: number } | null {
  if (setting === 'none') return null;
  if (setting === 'auto') return currentUid === 0 ? lookupUser('nobody') : null;
  const numeric = /^(\d+):(\d+)$/.exec(setting);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  return lookupUser(setting);
}

function lookupUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`SHELL_RUN_AS: no user named ${JSON.stringify(name)} in /etc/passwd`);
  return { uid: Number(uid), gid: Number(gid) };
}

/** Path of an executable `bwrap`: BWRAP_PATH if given (`none` turns sandboxing off), else the first on PATH, else null. */
export function findBwrap(configured: string | undefined, path = process.env.PATH ?? ''): string | null {
  if (configured === 'none') return null;
  const candidates = configured ? [configured] : path.split(delimiter).map((d) => join(d, 'bwrap'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  if (configured) throw new Error(`BWRAP_PATH=${configured} is not an executable file`);
  return null;
}
