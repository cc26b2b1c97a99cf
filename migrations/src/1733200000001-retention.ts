import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Retention: filled in by the retention change. */
export class Retention1733200000001 implements MigrationInterface {
  name = 'Retention1733200000001';

  async up(_q: QueryRunner): Promise<void> {}

  async down(_q: QueryRunner): Promise<void> {}
}
