import { ApiError, ErrorCode, httpStatusOf } from '../../apps/api/src/common/api-error';
import { decodeCursor, encodeCursor } from '../../apps/api/src/common/pagination';

test('every error code maps to a 4xx or 5xx status', () => {
  for (const code of Object.values(ErrorCode)) {
    const status = httpStatusOf(code);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(600);
  }
  expect(new ApiError(ErrorCode.TASK_NOT_FOUND, 'x').status).toBe(404);
});

test.each([
  [ErrorCode.PIPELINE_NOT_FOUND, 404],
  [ErrorCode.PIPELINE_RUN_NOT_FOUND, 404],
  [ErrorCode.PIPELINE_NAME_TAKEN, 409],
  [ErrorCode.PIPELINE_IN_USE, 409],
  [ErrorCode.PIPELINE_RUN_ALREADY_FINISHED, 409],
  [ErrorCode.PIPELINE_RUN_NOT_FINISHED, 409],
  [ErrorCode.PIPELINE_RUN_NOTHING_TO_RETRY, 409],
  [ErrorCode.PIPELINE_VERSION_MISMATCH, 412],
  [ErrorCode.PIPELINE_INVALID, 422],
  [ErrorCode.PIPELINE_PARAMS_INVALID, 422],
  [ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND, 422],
  [ErrorCode.SCHEDULE_TARGET_INVALID, 422],
])('%s answers %i', (code, status) => {
  expect(httpStatusOf(code)).toBe(status);
});

test('a cursor round-trips with microsecond precision', () => {
  const c = { createdAt: '2026-11-23T10:00:00.123456Z', id: '6f1c1c9e-0000-4000-8000-000000000001' };
  expect(decodeCursor(encodeCursor(c))).toEqual(c);
  expect(decodeCursor(undefined)).toBeNull();
});

test.each([
  'garbage',
  Buffer.from('[1,2]').toString('base64url'),
  Buffer.from('["not a date","6f1c1c9e-0000-4000-8000-000000000001"]').toString('base64url'),
])('a forged cursor %j is INVALID_CURSOR', (raw) => {
  expect(() => decodeCursor(raw)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_CURSOR }));
});
