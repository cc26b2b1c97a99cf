import { readFileSync } from 'node:fs';

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
