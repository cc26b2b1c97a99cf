export * from './data-source';
export * from './entities/tenant.entity';
export * from './entities/api-key.entity';
export * from './entities/task.entity';
export * from './entities/run.entity';
export * from './entities/run-attempt.entity';
export * from './entities/run-shard.entity';
export * from './entities/audit-event.entity';
