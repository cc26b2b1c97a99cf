import { SHELL_LIMIT_KEYS } from '@task-scheduler/contracts';
import type { ShellLimitKey, ShellLimits } from '@task-scheduler/contracts';

/** Lowest and highest value of each limit: the bounds of validation at every level (task, tenant cap, platform default). */
export const SHELL_LIMIT_BOUNDS: Record<ShellLimitKey, { min: number; max: number }> = {
  memoryMb: { min: 16, max: 1_048_576 },
  processes: { min: 8, max: 65_536 },
  cpuSeconds: { min: 1, max: 604_800 },
  fileSizeMb: { min: 1, max: 1_048_576 },
  openFiles: { min: 16, max: 1_048_576 },
  workdirMb: { min: 1, max: 1_048_576 },
};

/** Platform defaults when `SHELL_DEFAULT_LIMITS` names none. */
export const SHELL_DEFAULT_LIMITS: Required<ShellLimits> = {
  memoryMb: 1024,
  processes: 256,
  cpuSeconds: 3600,
  fileSizeMb: 1024,
  openFiles: 1024,
  workdirMb: 1024,
};

/**
 * Parses `memoryMb=512,processes=128`: named limits over the built-in defaults.
 * Throws naming the first bad item.
 */
export function parseLimitList(list: string): Required<ShellLimits> {
  const out: Required<ShellLimits> = { ...SHELL_DEFAULT_LIMITS };
  for (const item of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z]+)=(\d+)$/.exec(item);
    const key = m?.[1] as ShellLimitKey | undefined;
    if (!m || !key || !(SHELL_LIMIT_KEYS as readonly string[]).includes(key)) {
      throw new Error(`${JSON.stringify(item)} is not <limit>=<integer> with a limit among ${SHELL_LIMIT_KEYS.join(', ')}`);
    }
    const value = Number(m[2]);
    const { min, max } = SHELL_LIMIT_BOUNDS[key];
    if (value < min || value > max) throw new Error(`${key} must be between ${min} and ${max}`);
    out[key] = value;
  }
  return out;
}

/**
 * The limits one attempt runs with: the task's value, else the platform
 * default, and never above the tenant's cap.
 */
export function resolveShellLimits(
  task: ShellLimits | undefined,
  caps: ShellLimits | undefined,
  defaults: Required<ShellLimits>,
): Required<ShellLimits> {
  const out = { ...defaults };
  for (const key of SHELL_LIMIT_KEYS) {
    const wanted = task?.[key] ?? defaults[key];
    const cap = caps?.[key];
    out[key] = cap === undefined ? wanted : Math.min(wanted, cap);
  }
  return out;
}

/** The task's limits that exceed the tenant's caps, with both values. */
export function limitsAboveCaps(
  task: ShellLimits | undefined,
  caps: ShellLimits | undefined,
): { limit: ShellLimitKey; value: number; cap: number }[] {
  const out: { limit: ShellLimitKey; value: number; cap: number }[] = [];
  for (const key of SHELL_LIMIT_KEYS) {
    const value = task?.[key];
    const cap = caps?.[key];
    if (value !== undefined && cap !== undefined && value > cap) out.push({ limit: key, value, cap });
  }
  return out;
}
