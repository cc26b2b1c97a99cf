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

/** Platform maxima when `SHELL_MAX_LIMITS` names none: the ceiling of every task and tenant cap. */
export const SHELL_MAX_LIMITS: Required<ShellLimits> = {
  memoryMb: 8192,
  processes: 4096,
  cpuSeconds: 86_400,
  fileSizeMb: 10_240,
  openFiles: 65_536,
  workdirMb: 10_240,
};

/** The caps that apply to a tenant: its own where set, never above the platform maxima. */
export function effectiveCaps(tenantCaps: ShellLimits | undefined, platformMax: Required<ShellLimits>): Required<ShellLimits> {
  const out = { ...platformMax };
  for (const key of SHELL_LIMIT_KEYS) {
    const cap = tenantCaps?.[key];
    if (cap !== undefined) out[key] = Math.min(cap, platformMax[key]);
  }
  return out;
}

/**
 * Parses `memoryMb=512,processes=128`: named limits over `base` (the built-in defaults unless given).
 * Throws naming the first bad item.
 */
export function parseLimitList(list: string, base: Required<ShellLimits> = SHELL_DEFAULT_LIMITS): Required<ShellLimits> {
  const out: Required<ShellLimits> = { ...base };
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
