import type { Type } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import type { Page } from './pagination';

/**
 * The OpenAPI class of a page of `item`s, named after the item (`TaskResponse`
 * → `TaskPage`), so every list route documents the same `{ items, nextCursor }`.
 */
export function PageOf<T>(item: Type<T>): Type<Page<T>> {
  class PageOfItems {
    @ApiProperty({ type: [item] }) items!: T[];
    @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` to get the next page; null on the last page.' })
    nextCursor!: string | null;
  }
  Object.defineProperty(PageOfItems, 'name', { value: `${item.name.replace(/Response$/, '')}Page` });
  return PageOfItems;
}

/** Maps the items of a page, keeping its cursor. */
export function mapPage<E, R>(page: Page<E>, map: (e: E) => R): Page<R> {
  return { items: page.items.map(map), nextCursor: page.nextCursor };
}

/** ISO 8601 for a nullable timestamp column. */
export function isoOrNull(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}
