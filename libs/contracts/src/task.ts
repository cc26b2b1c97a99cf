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
  /** Absolute directory to run in; by default a fresh directory per attempt, removed afterwards. */
  workingDirectory?: string;
  /** Run inside bubblewrap (no network, dies with the worker); refused by workers without `bwrap`. */
  sandbox?: boolean;
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
