/* Errors of the database connection, as opposed to errors of a statement: the API answers them 503, the
 * workers' record writes wait them out. */

/**
 * SQLSTATEs that say the connection, not the statement, failed: the server shut the session down
 * (57P01 admin_shutdown, e.g. `pg_terminate_backend`; 57P02 crash_shutdown; 57P03 cannot_connect_now while
 * it starts or stops) or the connection itself broke (class 08). The same statement may succeed on a new one.
 */
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

/** Socket errors of the driver when the server is down, unreachable or drops the connection. */
const SOCKET_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Messages of `pg` and `pg-pool` errors that carry no code: the socket closed under a query
 * ("Connection terminated unexpectedly", "... due to connection timeout"), no pooled connection could be made
 * in time, or a client that already lost its connection was used again.
 */
const CONNECTION_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
];

/**
 * TypeORM releases a query runner whose connection raised an error (PostgresQueryRunner's `error` listener), so
 * the next statement of that transaction fails with one of these instead of the connection's own error.
 */
const RELEASED_RUNNER_ERRORS = new Set(['QueryRunnerAlreadyReleasedError', 'QueryRunnerProviderAlreadyReleasedError']);

/**
 * True when `err` says PostgreSQL could not be reached or dropped the connection: worth a 503 and a retry,
 * not a 500. Looks through TypeORM's `QueryFailedError` (its `driverError`), `cause` chains and the
 * `AggregateError` Node raises when every address of a host refused the connection.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [err];
  // Bounded: error graphs are shallow, and a cycle (cause pointing back) must not loop.
  for (let i = 0; i < 16 && pending.length > 0; i++) {
    const e = pending.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const { name, code, message, driverError, cause, errors } = e as {
      name?: unknown;
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
      errors?: unknown;
    };
    if (typeof name === 'string' && RELEASED_RUNNER_ERRORS.has(name)) return true;
    if (typeof code === 'string' && (CONNECTION_SQLSTATES.has(code) || SOCKET_ERRNOS.has(code))) return true;
    if (typeof message === 'string' && CONNECTION_MESSAGES.some((m) => m.test(message))) return true;
    pending.push(driverError, cause, ...(Array.isArray(errors) ? errors : []));
  }
  return false;
}
