import { ApiError, ErrorCode } from './api-error';

/** Keyset cursor over `(created_at DESC, id DESC)`: stable under inserts, no OFFSET. */
export interface Cursor {
  createdAt: string;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');
}

export function decodeCursor(raw: string | undefined): Cursor | null {
  if (!raw) return null;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [string, string];
    if (typeof createdAt === 'string' && !Number.isNaN(Date.parse(createdAt)) && isUuid(id)) return { createdAt, id };
  } catch {
    // fall through
  }
  throw new ApiError(ErrorCode.INVALID_CURSOR, 'cursor is not one this API returned', [
    { field: 'cursor', message: 'pass back the nextCursor of a page, unchanged' },
  ]);
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/**
 * Runs a keyset-paginated query, newest first. The cursor keeps `created_at`
 * at PostgreSQL's microsecond precision (a JS Date would round it and skip or
 * repeat rows on a page boundary).
 */
export async function keysetPage<T extends { id: string }>(
  qb: import('typeorm').SelectQueryBuilder<T>,
  alias: string,
  limit: number,
  rawCursor: string | undefined,
): Promise<Page<T>> {
  const cursor = decodeCursor(rawCursor);
  if (cursor) {
    qb.andWhere(`(${alias}.created_at, ${alias}.id) < (:cursorTs::timestamptz, :cursorId::uuid)`, {
      cursorTs: cursor.createdAt,
      cursorId: cursor.id,
    });
  }
  qb.addSelect(`to_char(${alias}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, 'cursor_ts')
    .orderBy(`${alias}.created_at`, 'DESC')
    .addOrderBy(`${alias}.id`, 'DESC')
    .limit(limit + 1);
  const { entities, raw } = await qb.getRawAndEntities<{ cursor_ts: string }>();
  const items = entities.slice(0, limit);
  const last = items.length === limit && entities.length > limit ? raw[limit - 1] : undefined;
  return { items, nextCursor: last ? encodeCursor({ createdAt: last.cursor_ts, id: items[limit - 1].id }) : null };
}
