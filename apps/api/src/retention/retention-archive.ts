import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * The archive of one retention pass: per tenant and table one file, `<dir>/<tenant-slug>/<table>-<pass>.jsonl.gz`,
 * to which each batch appends one gzip member of JSON lines (one row each). `gunzip` and Node's `gunzipSync`
 * read the concatenated members as one stream. A batch is written and fsynced before its delete commits, so a
 * row is deleted only once it is on disk; a commit that fails after the write leaves the rows in the database and
 * in the archive, and a later pass archives them again (at least once).
 */
export class RetentionArchive {
  private readonly dirsMade = new Set<string>();
  /** Files written in this pass. */
  readonly files = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly passId: string,
  ) {}

  /** Appends `rows` (already JSON values) to the file of `slug` and `table`, and fsyncs file and directory. */
  async append(slug: string, table: string, rows: readonly unknown[]): Promise<void> {
    if (rows.length === 0) return;
    const tenantDir = join(this.dir, slug);
    if (!this.dirsMade.has(tenantDir)) {
      await mkdir(tenantDir, { recursive: true, mode: 0o700 });
      this.dirsMade.add(tenantDir);
    }
    const path = join(tenantDir, `${table}-${this.passId}.jsonl.gz`);
    const data = gzipSync(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const file = await open(path, 'a', 0o600);
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    if (!this.files.has(path)) {
      // A new file's directory entry must be durable too, or a crash could lose the file after the rows are gone.
      const d = await open(tenantDir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
      this.files.add(path);
    }
  }
}

/** A pass's id in file names: its start as ISO 8601 without separators, e.g. `20261203T061613Z`. */
export function passIdOf(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}
