import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationBootstrap } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { apiKeyFromString, generateApiKey } from '@task-scheduler/core';
import type { GeneratedApiKey } from '@task-scheduler/core';
import { ApiKeyEntity, DEFAULT_TENANT, TenantEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { APP_CONFIG } from '../infra/tokens';

/**
 * First start: with no tenant in the database, creates the `default` tenant
 * and an admin key for it. `BOOTSTRAP_API_KEY`, when set, is that key (and is
 * added on later starts if missing); otherwise a key is generated and printed
 * once to stderr — it is stored only as a hash and cannot be shown again.
 */
@Injectable()
export class BootstrapService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Bootstrap');

  constructor(
    private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const printed = await this.db.transaction(async (tx) => {
      // Serialises concurrent API processes starting on an empty database.
      await tx.query('SELECT pg_advisory_xact_lock(727274002)');
      const tenants = tx.getRepository(TenantEntity);
      let tenant = await tenants.findOneBy({ slug: DEFAULT_TENANT.slug });
      const fresh = (await tenants.count()) === 0;
      if (fresh) {
        tenant = await tenants.save(tenants.create(DEFAULT_TENANT));
        this.logger.log(`created tenant default (${tenant.id})`);
      }
      if (!tenant) {
        // Tenants exist but none is `default` (renamed or deleted): the key would belong to no one, so it is not
        // added, and the operator who set it is told why it will be refused.
        if (this.config.BOOTSTRAP_API_KEY) {
          this.logger.warn('BOOTSTRAP_API_KEY not added: the database has tenants but no tenant with slug "default"');
        }
        return null;
      }
      const keys = tx.getRepository(ApiKeyEntity);
      let key: GeneratedApiKey | null = null;
      if (this.config.BOOTSTRAP_API_KEY) {
        key = apiKeyFromString(this.config.BOOTSTRAP_API_KEY);
        if (await keys.existsBy({ prefix: key.prefix })) return null;
      } else if (fresh) {
        key = generateApiKey();
      } else {
        return null;
      }
      const saved = await keys.save(
        keys.create({
          tenantId: tenant.id,
          name: 'bootstrap admin',
          prefix: key.prefix,
          secretHash: key.secretHash,
          role: 'admin',
          permissions: [],
          platformAdmin: true,
        }),
      );
      this.logger.log(`created bootstrap admin key ${key.prefix} (${saved.id})`);
      return this.config.BOOTSTRAP_API_KEY ? null : key.key;
    });
    if (printed) {
      // Deliberately not through the logger: the key is shown once to the operator, never shipped to log storage.
      process.stderr.write(`\n  Admin API key (shown once, store it now): ${printed}\n\n`);
    }
  }
}
