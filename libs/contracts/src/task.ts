export const EXECUTORS = ['shell', 'http'] as const;
export type ExecutorKind = (typeof EXECUTORS)[number];

export interface ShellSpec {
  /** Program to execute (resolved on PATH); mutually exclusive with `script`. */
  command?: string;
  args?: string[];
  /** A script run by `/bin/sh -c`; mutually exclusive with `command`. */
  script?: string;
  env?: Record<string, string>;
  /** Exit codes that count as success; default `[0]`. */
  allowedExitCodes?: number[];
  /**
   * Isolated (the default): where the attempt's private, empty working directory
   * appears inside its sandbox (default `/work`). With `SHELL_ISOLATION=none`:
   * the host directory to run in.
   */
  workingDirectory?: string;
  /** `none` (default): no network at all. `egress`: public addresses only, through user-mode networking. */
  network?: ShellNetwork;
  /** Resource limits of each attempt; unset values take the platform defaults, all are capped by the tenant's caps. */
  limits?: ShellLimits;
}

export const SHELL_NETWORKS = ['none', 'egress'] as const;
export type ShellNetwork = (typeof SHELL_NETWORKS)[number];

/** The limits of one shell attempt, all of them enforced outside the task. */
export interface ShellLimits {
  /** Memory of all the attempt's processes together (cgroup), MiB. */
  memoryMb?: number;
  /** Processes and threads alive at once. */
  processes?: number;
  /** CPU time of all the attempt's processes, seconds. */
  cpuSeconds?: number;
  /** Largest file a process may write, MiB. */
  fileSizeMb?: number;
  /** Open files per process. */
  openFiles?: number;
  /** Size of the working directory and of /tmp (each), MiB. */
  workdirMb?: number;
}

export const SHELL_LIMIT_KEYS = ['memoryMb', 'processes', 'cpuSeconds', 'fileSizeMb', 'openFiles', 'workdirMb'] as const;
export type ShellLimitKey = (typeof SHELL_LIMIT_KEYS)[number];

/** What a limit is called in an attempt's outcome (`resource_limit: memory`). */
export const SHELL_LIMIT_NAMES: Record<ShellLimitKey, string> = {
  memoryMb: 'memory',
  processes: 'processes',
  cpuSeconds: 'cpu',
  fileSizeMb: 'file_size',
  openFiles: 'open_files',
  workdirMb: 'workdir_size',
};

/** How a tenant may use shell tasks; set by the platform admin. */
export interface TenantShellPolicy {
  /** `network: "egress"` tasks allowed (default true). */
  allowEgress?: boolean;
  /** Highest value a task may set for each limit; also caps the platform default. */
  maxLimits?: ShellLimits;
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface HttpSpec {
  method: HttpMethod;
  /** http(s) URL; `{name}` placeholders are filled from `variables` (URL-encoded). */
  url: string;
  headers?: Record<string, string>;
  /** Request body: a string is sent as is, anything else as JSON. */
  body?: unknown;
  /** Default values of the URL's `{name}` placeholders; a trigger may override them. */
  variables?: Record<string, string>;
  /** Status codes that count as success; default 200-299. */
  expectedStatus?: number[];
}

/** Per-trigger parameter overrides, merged over the task's spec. */
export interface RunOverrides {
  /** shell: variables added to (and winning over) the task's env. */
  env?: Record<string, string>;
  /** shell: replaces the task's args. */
  args?: string[];
  /** http: URL placeholder values. */
  variables?: Record<string, string>;
  /** http: headers added to (and winning over) the task's headers. */
  headers?: Record<string, string>;
  /** http: replaces the task's body. */
  body?: unknown;
}

export interface RetrySpec {
  /** Total attempts, including the first; always finite. */
  maximumAttempts: number;
  initialIntervalSeconds: number;
  backoffCoefficient: number;
  maximumIntervalSeconds: number;
  /** Exit codes after which no further attempt is made. */
  nonRetryableExitCodes: number[];
}

export const DEFAULT_RETRY: RetrySpec = {
  maximumAttempts: 3,
  initialIntervalSeconds: 1,
  backoffCoefficient: 2,
  maximumIntervalSeconds: 60,
  nonRetryableExitCodes: [],
};

/** Alert settings of a task or a tenant. */
export interface AlertSpec {
  /** Called with the run summary when a run ends failed or timed out for good. */
  webhookUrl: string;
  /** Also call when a task succeeds again after an alerted failure. */
  onRecovery?: boolean;
  /** Failures of the same task within this window after an alert send no further alert. Default 3600. */
  windowSeconds?: number;
}
