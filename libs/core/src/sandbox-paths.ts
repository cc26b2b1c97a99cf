/** Where an isolated task's outputs file (`$TASK_OUTPUTS`) appears in its sandbox. */
export const SANDBOX_OUTPUTS_DIR = '/run/task-outputs';
export const SANDBOX_OUTPUTS_FILE = `${SANDBOX_OUTPUTS_DIR}/outputs`;

/** Paths a task's working directory may not take inside the sandbox: the system it reads, and its outputs file. */
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
  SANDBOX_OUTPUTS_DIR,
];

/**
 * True when `path` is a place the sandbox can mount a private working
 * directory at: a normalised absolute path (no empty, `.` or `..` segments,
 * so `//tmp/x` cannot pass for something outside /tmp) of portable name
 * characters, outside the system directories.
 */
export function isUsableWorkDir(path: string): boolean {
  if (!/^(\/[A-Za-z0-9_][A-Za-z0-9._-]*)+$/.test(path) || path.length > 1024) return false;
  if (path.split('/').some((s) => s === '..' || s === '.')) return false;
  return !RESERVED_SANDBOX_PATHS.some((p) => path === p || path.startsWith(`${p}/`));
}
