import { DatabaseError } from 'pg';
import { QueryFailedError, QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import { ErrorCode, httpStatusOf } from '../../apps/api/src/common/api-error';
import { toApiError } from '../../apps/api/src/common/api-error.filter';
import { isDatabaseUnavailable, isUniqueViolation } from '../../apps/api/src/common/db-errors';

/** An error as pg raises it for a server message: a DatabaseError with its SQLSTATE. */
function pgError(code: string, message: string): DatabaseError {
  const err = new DatabaseError(message, message.length, 'error');
  err.code = code;
  err.severity = 'FATAL';
  return err;
}

/** As TypeORM hands it on: the driver's error wrapped, its properties copied onto the wrapper. */
function queryFailed(driverError: Error): QueryFailedError {
  return new QueryFailedError('SELECT 1', [], driverError);
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: -111, syscall: 'connect' });
}

describe('isDatabaseUnavailable', () => {
  test.each([
    ['57P01', 'terminating connection due to administrator command'],
    ['57P02', 'terminating connection because of crash of another server process'],
    ['57P03', 'the database system is starting up'],
    ['08000', 'connection exception'],
    ['08003', 'connection does not exist'],
    ['08006', 'connection failure'],
  ])('SQLSTATE %s, raw and wrapped by TypeORM', (code, message) => {
    expect(isDatabaseUnavailable(pgError(code, message))).toBe(true);
    expect(isDatabaseUnavailable(queryFailed(pgError(code, message)))).toBe(true);
  });

  test.each(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'])('socket error %s', (code) => {
    expect(isDatabaseUnavailable(socketError(code))).toBe(true);
  });

  test('an AggregateError of refused addresses (Node when every address of a host refuses)', () => {
    const err = new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], '');
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  test.each([
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error and is not queryable',
  ])('pg message without a code: %s', (message) => {
    expect(isDatabaseUnavailable(new Error(message))).toBe(true);
    expect(isDatabaseUnavailable(queryFailed(new Error(message)))).toBe(true);
  });

  test('the next statement of a transaction whose connection TypeORM released after a connection error', () => {
    expect(isDatabaseUnavailable(new QueryRunnerAlreadyReleasedError())).toBe(true);
    expect(isDatabaseUnavailable(new QueryRunnerProviderAlreadyReleasedError())).toBe(true);
  });

  test('a cause chain', () => {
    expect(isDatabaseUnavailable(new Error('could not load the task', { cause: socketError('ECONNRESET') }))).toBe(true);
  });

  test.each([
    ['unique violation', queryFailed(pgError('23505', 'duplicate key value violates unique constraint "x"'))],
    ['syntax error', queryFailed(pgError('42601', 'syntax error at or near "SELEC"'))],
    ['serialization failure', queryFailed(pgError('40001', 'could not serialize access'))],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    // Temporal's gRPC errors carry a numeric status, never a SQLSTATE or errno string.
    ['a gRPC UNAVAILABLE', Object.assign(new Error('14 UNAVAILABLE: Connection refused'), { code: 14 })],
    ['a string', 'Connection terminated'],
    ['null', null],
  ])('not for %s', (_, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
  });

  test('a cycle of causes ends', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isDatabaseUnavailable(a)).toBe(false);
  });

  test('unique violations stay what they are', () => {
    expect(isUniqueViolation(queryFailed(pgError('23505', 'duplicate key')))).toBe(true);
    expect(isUniqueViolation(queryFailed(pgError('57P01', 'terminating connection')))).toBe(false);
  });
});

describe('toApiError for database errors', () => {
  test('a lost connection is a 503 DATABASE_UNAVAILABLE with a retry delay, not a 500', () => {
    const err = toApiError(queryFailed(pgError('57P01', 'terminating connection due to administrator command')));
    expect(err.code).toBe(ErrorCode.DATABASE_UNAVAILABLE);
    expect(err.status).toBe(503);
    expect(httpStatusOf(ErrorCode.DATABASE_UNAVAILABLE)).toBe(503);
    expect(err.details).toEqual([expect.objectContaining({ retryAfterSeconds: 1 })]);
    // The client learns nothing of the statement or the driver's text.
    expect(JSON.stringify(err.details) + err.message).not.toMatch(/SELECT|administrator/);
  });

  test('a refused connection too', () => {
    expect(toApiError(socketError('ECONNREFUSED')).code).toBe(ErrorCode.DATABASE_UNAVAILABLE);
  });

  test('other database errors stay internal errors', () => {
    expect(toApiError(queryFailed(pgError('42601', 'syntax error'))).code).toBe(ErrorCode.INTERNAL_ERROR);
  });
});
