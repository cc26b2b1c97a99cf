/** Paths a task's working directory may not take inside the sandbox: the system it reads. */
export const RESERVED_SANDBOX_PATHS = [
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc',
  '/proc',
  '/dev',
  '/tmp',
  '/sys',
];

/** True when `path` is a place the sandbox can mount a private working directory at. */
export function isUsableWorkDir(path: string): boolean {
  if (!/^\/[^\0]*$/.test(path) || path.split('/').some((s) => s === '..' || s === '.')) return false;
  const clean = path.replace(/\/+$/, '');
  if (clean === '') return false;
  return !RESERVED_SANDBOX_PATHS.some((p) => clean === p || clean.startsWith(`${p}/`));
}
