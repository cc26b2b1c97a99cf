/** Stable, machine-readable error codes of the public API. */
export enum ErrorCode {
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  MALFORMED_JSON = 'MALFORMED_JSON',
  MALFORMED_REQUEST = 'MALFORMED_REQUEST',
  HEADERS_TOO_LARGE = 'HEADERS_TOO_LARGE',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  INVALID_CURSOR = 'INVALID_CURSOR',
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  TENANT_SUSPENDED = 'TENANT_SUSPENDED',
  FORBIDDEN = 'FORBIDDEN',
  ROUTE_NOT_FOUND = 'ROUTE_NOT_FOUND',
  TASK_NOT_FOUND = 'TASK_NOT_FOUND',
  RUN_NOT_FOUND = 'RUN_NOT_FOUND',
  ATTEMPT_NOT_FOUND = 'ATTEMPT_NOT_FOUND',
  API_KEY_NOT_FOUND = 'API_KEY_NOT_FOUND',
  TENANT_NOT_FOUND = 'TENANT_NOT_FOUND',
  TASK_NAME_TAKEN = 'TASK_NAME_TAKEN',
  TASK_DISABLED = 'TASK_DISABLED',
  TASK_VERSION_MISMATCH = 'TASK_VERSION_MISMATCH',
  TASK_IN_USE = 'TASK_IN_USE',
  TASK_EGRESS_FORBIDDEN = 'TASK_EGRESS_FORBIDDEN',
  TASK_LIMIT_ABOVE_TENANT_CAP = 'TASK_LIMIT_ABOVE_TENANT_CAP',
  TENANT_QUOTA_EXCEEDED = 'TENANT_QUOTA_EXCEEDED',
  TENANT_SLUG_TAKEN = 'TENANT_SLUG_TAKEN',
  TENANT_SELF_SUSPEND = 'TENANT_SELF_SUSPEND',
  RATE_LIMITED = 'RATE_LIMITED',
  TOO_MANY_FOLLOWERS = 'TOO_MANY_FOLLOWERS',
  IDEMPOTENCY_KEY_INVALID = 'IDEMPOTENCY_KEY_INVALID',
  IDEMPOTENCY_KEY_REUSED = 'IDEMPOTENCY_KEY_REUSED',
  RUN_ALREADY_FINISHED = 'RUN_ALREADY_FINISHED',
  RUN_NOT_FINISHED = 'RUN_NOT_FINISHED',
  RUN_ALREADY_REDRIVEN = 'RUN_ALREADY_REDRIVEN',
  NOT_A_DEAD_LETTER = 'NOT_A_DEAD_LETTER',
  SECRETS_NOT_CONFIGURED = 'SECRETS_NOT_CONFIGURED',
  SCHEDULE_NOT_FOUND = 'SCHEDULE_NOT_FOUND',
  CALENDAR_NOT_FOUND = 'CALENDAR_NOT_FOUND',
  SCHEDULE_NAME_TAKEN = 'SCHEDULE_NAME_TAKEN',
  CALENDAR_NAME_TAKEN = 'CALENDAR_NAME_TAKEN',
  SCHEDULE_INVALID_CRON = 'SCHEDULE_INVALID_CRON',
  SCHEDULE_INVALID_TIMEZONE = 'SCHEDULE_INVALID_TIMEZONE',
  SCHEDULE_INVALID_RANGE = 'SCHEDULE_INVALID_RANGE',
  SCHEDULE_INVALID_CALENDAR = 'SCHEDULE_INVALID_CALENDAR',
  SCHEDULE_INVALID_INTERVAL = 'SCHEDULE_INVALID_INTERVAL',
  SCHEDULE_SPEC_EMPTY = 'SCHEDULE_SPEC_EMPTY',
  SCHEDULE_NEVER_FIRES = 'SCHEDULE_NEVER_FIRES',
  SCHEDULE_TASK_NOT_FOUND = 'SCHEDULE_TASK_NOT_FOUND',
  SCHEDULE_PIPELINE_NOT_FOUND = 'SCHEDULE_PIPELINE_NOT_FOUND',
  SCHEDULE_TARGET_INVALID = 'SCHEDULE_TARGET_INVALID',
  SCHEDULE_REJECTED = 'SCHEDULE_REJECTED',
  SCHEDULE_TRIGGER_NOT_STARTED = 'SCHEDULE_TRIGGER_NOT_STARTED',
  SCHEDULE_RUN_NOT_RECORDED = 'SCHEDULE_RUN_NOT_RECORDED',
  CALENDAR_IN_USE = 'CALENDAR_IN_USE',
  PIPELINE_NOT_FOUND = 'PIPELINE_NOT_FOUND',
  PIPELINE_RUN_NOT_FOUND = 'PIPELINE_RUN_NOT_FOUND',
  PIPELINE_NAME_TAKEN = 'PIPELINE_NAME_TAKEN',
  PIPELINE_VERSION_MISMATCH = 'PIPELINE_VERSION_MISMATCH',
  PIPELINE_IN_USE = 'PIPELINE_IN_USE',
  PIPELINE_INVALID = 'PIPELINE_INVALID',
  PIPELINE_PARAMS_INVALID = 'PIPELINE_PARAMS_INVALID',
  PIPELINE_RUN_ALREADY_FINISHED = 'PIPELINE_RUN_ALREADY_FINISHED',
  PIPELINE_RUN_NOT_FINISHED = 'PIPELINE_RUN_NOT_FINISHED',
  PIPELINE_RUN_NOTHING_TO_RETRY = 'PIPELINE_RUN_NOTHING_TO_RETRY',
  URL_ADDRESS_REFUSED = 'URL_ADDRESS_REFUSED',
  ALERT_CHANNEL_NOT_FOUND = 'ALERT_CHANNEL_NOT_FOUND',
  ALERT_CHANNEL_NAME_TAKEN = 'ALERT_CHANNEL_NAME_TAKEN',
  ALERT_CHANNEL_IN_USE = 'ALERT_CHANNEL_IN_USE',
  ALERT_CHANNEL_INVALID = 'ALERT_CHANNEL_INVALID',
  SMTP_NOT_CONFIGURED = 'SMTP_NOT_CONFIGURED',
  ALERT_RULE_NOT_FOUND = 'ALERT_RULE_NOT_FOUND',
  ALERT_RULE_NAME_TAKEN = 'ALERT_RULE_NAME_TAKEN',
  ALERT_RULE_INVALID = 'ALERT_RULE_INVALID',
  ALERT_NOT_FOUND = 'ALERT_NOT_FOUND',
  ALERT_NOT_FIRING = 'ALERT_NOT_FIRING',
  TEMPORAL_UNAVAILABLE = 'TEMPORAL_UNAVAILABLE',
  DATABASE_UNAVAILABLE = 'DATABASE_UNAVAILABLE',
  OVERLOADED = 'OVERLOADED',
  INTERNAL_ERROR = 'INTERNAL_ERROR',
}

/** Maps every code to its HTTP status; the switch is exhaustive, so a new code cannot be forgotten. */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.VALIDATION_FAILED:
    case ErrorCode.MALFORMED_JSON:
    case ErrorCode.MALFORMED_REQUEST:
    case ErrorCode.INVALID_CURSOR:
    case ErrorCode.IDEMPOTENCY_KEY_INVALID:
    case ErrorCode.SCHEDULE_INVALID_CRON:
    case ErrorCode.SCHEDULE_INVALID_TIMEZONE:
    case ErrorCode.SCHEDULE_INVALID_RANGE:
    case ErrorCode.SCHEDULE_INVALID_CALENDAR:
    case ErrorCode.SCHEDULE_INVALID_INTERVAL:
    case ErrorCode.SCHEDULE_REJECTED:
      return 400;
    case ErrorCode.UNAUTHENTICATED:
      return 401;
    case ErrorCode.TENANT_SUSPENDED:
    case ErrorCode.FORBIDDEN:
      return 403;
    case ErrorCode.ROUTE_NOT_FOUND:
    case ErrorCode.TASK_NOT_FOUND:
    case ErrorCode.RUN_NOT_FOUND:
    case ErrorCode.ATTEMPT_NOT_FOUND:
    case ErrorCode.API_KEY_NOT_FOUND:
    case ErrorCode.TENANT_NOT_FOUND:
    case ErrorCode.SCHEDULE_NOT_FOUND:
    case ErrorCode.CALENDAR_NOT_FOUND:
    case ErrorCode.PIPELINE_NOT_FOUND:
    case ErrorCode.PIPELINE_RUN_NOT_FOUND:
    case ErrorCode.ALERT_CHANNEL_NOT_FOUND:
    case ErrorCode.ALERT_RULE_NOT_FOUND:
    case ErrorCode.ALERT_NOT_FOUND:
      return 404;
    case ErrorCode.TASK_NAME_TAKEN:
    case ErrorCode.TENANT_SLUG_TAKEN:
    case ErrorCode.RUN_ALREADY_FINISHED:
    case ErrorCode.RUN_NOT_FINISHED:
    case ErrorCode.RUN_ALREADY_REDRIVEN:
    case ErrorCode.SCHEDULE_NAME_TAKEN:
    case ErrorCode.CALENDAR_NAME_TAKEN:
    case ErrorCode.CALENDAR_IN_USE:
    case ErrorCode.TASK_IN_USE:
    case ErrorCode.SCHEDULE_TRIGGER_NOT_STARTED:
    case ErrorCode.PIPELINE_NAME_TAKEN:
    case ErrorCode.PIPELINE_IN_USE:
    case ErrorCode.PIPELINE_RUN_ALREADY_FINISHED:
    case ErrorCode.PIPELINE_RUN_NOT_FINISHED:
    case ErrorCode.PIPELINE_RUN_NOTHING_TO_RETRY:
    case ErrorCode.ALERT_CHANNEL_NAME_TAKEN:
    case ErrorCode.ALERT_CHANNEL_IN_USE:
    case ErrorCode.ALERT_RULE_NAME_TAKEN:
    case ErrorCode.ALERT_NOT_FIRING:
      return 409;
    case ErrorCode.TASK_VERSION_MISMATCH:
    case ErrorCode.PIPELINE_VERSION_MISMATCH:
      return 412;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.UNSUPPORTED_MEDIA_TYPE:
      return 415;
    case ErrorCode.HEADERS_TOO_LARGE:
      return 431;
    case ErrorCode.TASK_DISABLED:
    case ErrorCode.TASK_EGRESS_FORBIDDEN:
    case ErrorCode.TASK_LIMIT_ABOVE_TENANT_CAP:
    case ErrorCode.TENANT_QUOTA_EXCEEDED:
    case ErrorCode.TENANT_SELF_SUSPEND:
    case ErrorCode.IDEMPOTENCY_KEY_REUSED:
    case ErrorCode.NOT_A_DEAD_LETTER:
    case ErrorCode.SECRETS_NOT_CONFIGURED:
    case ErrorCode.SCHEDULE_SPEC_EMPTY:
    case ErrorCode.SCHEDULE_NEVER_FIRES:
    case ErrorCode.SCHEDULE_TASK_NOT_FOUND:
    case ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND:
    case ErrorCode.SCHEDULE_TARGET_INVALID:
    case ErrorCode.PIPELINE_INVALID:
    case ErrorCode.PIPELINE_PARAMS_INVALID:
    case ErrorCode.URL_ADDRESS_REFUSED:
    case ErrorCode.ALERT_CHANNEL_INVALID:
    case ErrorCode.SMTP_NOT_CONFIGURED:
    case ErrorCode.ALERT_RULE_INVALID:
      return 422;
    case ErrorCode.RATE_LIMITED:
    case ErrorCode.TOO_MANY_FOLLOWERS:
      return 429;
    case ErrorCode.INTERNAL_ERROR:
      return 500;
    case ErrorCode.TEMPORAL_UNAVAILABLE:
    case ErrorCode.DATABASE_UNAVAILABLE:
    case ErrorCode.OVERLOADED:
      return 503;
    case ErrorCode.SCHEDULE_RUN_NOT_RECORDED:
      return 504;
  }
}

/**
 * One item of an error's `details`: always a sentence, the input it concerns as a dotted path
 * (`shell.args[2]`) when there is one, and code-specific properties (e.g. `permission`, `scheduleId`).
 * Every code uses this one shape, so a client reads details the same way whatever the code.
 */
export interface ErrorDetail {
  message: string;
  field?: string;
  [property: string]: unknown;
}

/** An error meant for the client: a code, a sentence a person understands, optional structured details. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): number {
    return httpStatusOf(this.code);
  }
}

/** An error about one input field: the message names the field, and `details` carries it for clients. */
export function fieldError(code: ErrorCode, field: string, message: string): ApiError {
  return new ApiError(code, `${field}: ${message}`, [{ field, message }]);
}

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[]; requestId?: string };
}
