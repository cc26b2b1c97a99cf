import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Request-rate counters shared by every API process (the layout
 * rate-limiter-flexible's PostgreSQL store expects; `expire` is epoch ms).
 */
export class RateLimits1732400000000 implements MigrationInterface {
  name = 'RateLimits1732400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE rate_limits (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limits`);
  }
}
