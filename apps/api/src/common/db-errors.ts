/** PostgreSQL unique_violation: a concurrent insert won the race for a unique key. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === '23505';
}

// Whether PostgreSQL is unreachable is the workers' question too (their record writes wait it out): libs/db.
export { isDatabaseUnavailable } from '@task-scheduler/db';
