export const EXECUTORS = ['shell'] as const;
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
