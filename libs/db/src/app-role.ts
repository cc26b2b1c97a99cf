/**
 * Least-privilege login roles for the processes that serve tenants. The
 * schema's owner runs migrations; the API and the workers connect as roles
 * that own nothing and may only read and write rows, so a leaked connection
 * string cannot change the schema, create roles, read `pg_authid` or run
 * programs on the database host (`COPY … TO PROGRAM` needs a superuser).
 */

/**
 * One connection: a `pg.Client`, or a connected TypeORM `QueryRunner`
 * (`dataSource.createQueryRunner()`), not a pool — the grants run in one
 * transaction on it.
 */
export interface SqlConnection {
  query(text: string, params?: unknown[]): Promise<unknown>;
}

export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface TableGrant {
  table: string;
  privileges: readonly TablePrivilege[];
  /** Only these columns (SELECT, INSERT and UPDATE can be limited so); the whole table when omitted. */
  columns?: readonly string[];
}

/**
 * What a role may do in the schema. `all-tables`: read and write every table
 * and use every sequence, also those later migrations create (default
 * privileges of the owner), except that `readOnlyTables` are read-only and `readDeleteTables` may be read
 * and deleted from but not written.
 * `tables`: exactly the listed grants; tables added later get nothing.
 */
export type RoleGrants =
  | { kind: 'all-tables'; readOnlyTables?: readonly string[]; readDeleteTables?: readonly string[] }
  | { kind: 'tables'; tables: readonly TableGrant[] };

/**
 * The API: rows of every table; the migration history read-only (nothing at runtime writes it); run output
 * written only by workers, read by followers and deleted by retention (apps/api/src/retention).
 */
export const API_ROLE_GRANTS: RoleGrants = {
  kind: 'all-tables',
  readOnlyTables: ['schema_migrations'],
  readDeleteTables: ['run_output_chunks'],
};

/**
 * The workers: what `RunRecorder` (activities/src/runs/run-recorder.ts) and
 * `PipelineRecorder` (activities/src/pipelines/pipeline-recorder.ts) read and
 * write, nothing else. Run and pipeline-run records, attempts, shards, step
 * states and alert state are written; pipelines and their versions are read;
 * of tenants and tasks only the columns they join on or build a step's run
 * from are readable, so a worker's credentials reach no API keys and no
 * descriptions, tags or metadata. A pipeline step's run input carries its
 * task's sealed secrets, so workers read that ciphertext: what a worker's
 * Temporal connection could already read from the histories of runs, and
 * only its SECRETS_KEY opens it. `SELECT … FOR UPDATE` needs UPDATE on the
 * table.
 */
export const WORKER_ROLE_GRANTS: RoleGrants = {
  kind: 'tables',
  tables: [
    { table: 'runs', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    { table: 'run_attempts', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    { table: 'run_shards', privileges: ['SELECT', 'INSERT'] },
    { table: 'run_output_chunks', privileges: ['SELECT', 'INSERT'] },
    { table: 'alert_states', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    // Alert rules counted at a run's end (libs/db alert-rules.ts): the rules are read FOR SHARE, which needs UPDATE
    // of some column: `updated_at` only, so a worker can change nothing of a rule but that timestamp.
    {
      table: 'alert_rules',
      privileges: ['SELECT'],
      columns: ['id', 'tenant_id', 'name', 'kind', 'task_id', 'failures', 'recoveries', 'channel_id', 'escalation_channel_id', 'enabled'],
    },
    { table: 'alert_rules', privileges: ['UPDATE'], columns: ['updated_at'] },
    { table: 'alert_rule_counters', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    { table: 'alert_run_evaluations', privileges: ['SELECT', 'INSERT'] },
    // Updates only of what opening and resolving change: never an alert's or notification's tenant or channel.
    { table: 'alerts', privileges: ['SELECT', 'INSERT'] },
    { table: 'alerts', privileges: ['UPDATE'], columns: ['state', 'summary', 'details', 'resolved_at', 'updated_at'] },
    { table: 'alert_notifications', privileges: ['SELECT', 'INSERT'] },
    { table: 'alert_notifications', privileges: ['UPDATE'], columns: ['status', 'last_error'] },
    { table: 'pipeline_runs', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    { table: 'pipeline_run_steps', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    { table: 'pipeline_alert_states', privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    {
      table: 'pipelines',
      privileges: ['SELECT'],
      columns: ['id', 'tenant_id', 'name', 'version', 'definition', 'alerts', 'deleted_at'],
    },
    { table: 'pipeline_versions', privileges: ['SELECT'], columns: ['pipeline_id', 'version', 'definition'] },
    { table: 'tenants', privileges: ['SELECT'], columns: ['id', 'max_concurrent_runs', 'alert_settings', 'shell_policy'] },
    {
      table: 'tasks',
      privileges: ['SELECT'],
      columns: [
        'id',
        'tenant_id',
        'name',
        'version',
        'executor',
        'spec',
        'secrets',
        'timeout_seconds',
        'retry_policy',
        'shard_count',
        'priority',
        'alerts',
        'enabled',
        'deleted_at',
      ],
    },
  ],
};

export interface AppRoleOptions {
  /** The login role to create or bring up to date, e.g. `task_scheduler_app`. */
  role: string;
  /** Set on every call (so a rotated secret takes effect); omitted: a new role gets none and an existing one keeps its own (certificate or IAM login). */
  password?: string;
  /** The schema holding the product's tables (`public` unless the URL sets a search_path). */
  schema: string;
  /** Default: {@link API_ROLE_GRANTS}. */
  grants?: RoleGrants;
  /** Owner of the tables, whose future tables get the default privileges; default: the connected user. */
  owner?: string;
}

/** Serialises concurrent callers (two `npm run dev` starts, parallel deploy jobs); 727274001/2 are the migration and bootstrap locks. */
const APP_ROLE_LOCK = 727274003;

/**
 * Creates the role if it does not exist and converges its privileges on
 * `grants`: whatever it held in the schema before is revoked first, in the
 * same transaction. Run it as the owner (or a superuser) after migrations,
 * and again after each migration when the grants name tables. Refuses, and
 * changes nothing, when the role would end up able to create objects, or
 * owns objects in the schema, or inherits privileges through membership of
 * another role: the grants could not bound what it can do.
 *
 * Also revokes CREATE on the schema from PUBLIC, as PostgreSQL 15 and later
 * do for `public`; before 15 every role may create tables there.
 */
export async function ensureAppRole(conn: SqlConnection, opts: AppRoleOptions): Promise<void> {
  const grants = opts.grants ?? API_ROLE_GRANTS;
  const role = ident(opts.role);
  const schema = ident(opts.schema);
  await conn.query('BEGIN');
  try {
    await conn.query('SELECT pg_advisory_xact_lock($1)', [APP_ROLE_LOCK]);
    const [me] = rowsOf<{ user: string; db: string }>(await conn.query('SELECT current_user AS "user", current_database() AS db'));
    const owner = opts.owner ?? me.user;
    if (opts.role === owner)
      throw new Error(`ensureAppRole: ${opts.role} is the owner of the tables; an application role must be another role`);

    const exists = rowsOf(await conn.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [opts.role])).length > 0;
    const password = opts.password === undefined ? '' : ` PASSWORD ${literal(opts.password)}`;
    await conn.query(
      `${exists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS${password}`,
    );
    await refuseOwnershipAndMembership(conn, opts.role, opts.schema);

    await conn.query(`GRANT CONNECT ON DATABASE ${ident(me.db)} TO ${role}`);
    await conn.query(`REVOKE CREATE ON SCHEMA ${schema} FROM PUBLIC`);
    await conn.query(`REVOKE ALL ON SCHEMA ${schema} FROM ${role}`);
    await conn.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    // Table-level REVOKE also takes back column privileges (SQL standard), so this clears every earlier grant.
    await conn.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${role}`);
    await conn.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${role}`);
    const defaults = `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} IN SCHEMA ${schema}`;
    await conn.query(`${defaults} REVOKE ALL ON TABLES FROM ${role}`);
    await conn.query(`${defaults} REVOKE ALL ON SEQUENCES FROM ${role}`);

    if (grants.kind === 'all-tables') {
      await conn.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
      await conn.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`);
      await conn.query(`${defaults} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`);
      await conn.query(`${defaults} GRANT USAGE, SELECT ON SEQUENCES TO ${role}`);
      const narrowed = [
        ...(grants.readOnlyTables ?? []).map((table) => ({ table, revoke: 'INSERT, UPDATE, DELETE' })),
        ...(grants.readDeleteTables ?? []).map((table) => ({ table, revoke: 'INSERT, UPDATE' })),
      ];
      for (const { table, revoke } of narrowed) {
        const [found] = rowsOf<{ t: string | null }>(await conn.query('SELECT to_regclass($1)::text AS t', [`${schema}.${ident(table)}`]));
        if (found.t) await conn.query(`REVOKE ${revoke} ON ${schema}.${ident(table)} FROM ${role}`);
      }
    } else {
      for (const g of grants.tables) {
        if (g.columns && g.privileges.includes('DELETE'))
          throw new Error(`ensureAppRole: DELETE on ${g.table} cannot be limited to columns`);
        const columns = g.columns ? ` (${g.columns.map(ident).join(', ')})` : '';
        const privileges = g.privileges.map((p) => `${privilege(p)}${columns}`).join(', ');
        await conn.query(`GRANT ${privileges} ON ${schema}.${ident(g.table)} TO ${role}`);
      }
    }

    await verifyBounded(conn, opts.role, opts.schema);
    await conn.query('COMMIT');
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function refuseOwnershipAndMembership(conn: SqlConnection, role: string, schema: string): Promise<void> {
  const owned = rowsOf<{ name: string }>(
    await conn.query(
      `SELECT 'schema ' || n.nspname AS name FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
        WHERE n.nspname = $2 AND r.rolname = $1
       UNION ALL
       SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner
        WHERE n.nspname = $2 AND r.rolname = $1
       UNION ALL
       SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
        WHERE n.nspname = $2 AND r.rolname = $1`,
      [role, schema],
    ),
  );
  if (owned.length > 0) {
    throw new Error(
      `ensureAppRole: ${role} owns ${owned.map((o) => o.name).join(', ')} in schema ${schema}; ` +
        'an owner may alter and drop what it owns: REASSIGN OWNED BY it to the migration owner first',
    );
  }
  const memberOf = rowsOf<{ name: string }>(
    await conn.query(
      `SELECT g.rolname AS name FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
        WHERE r.rolname = $1`,
      [role],
    ),
  );
  if (memberOf.length > 0) {
    throw new Error(`ensureAppRole: ${role} is a member of ${memberOf.map((m) => m.name).join(', ')}; it would hold their privileges too`);
  }
}

/** The role's attributes and schema/database rights as PostgreSQL resolves them (PUBLIC grants included), checked before COMMIT. */
async function verifyBounded(conn: SqlConnection, role: string, schema: string): Promise<void> {
  const [r] = rowsOf<Record<string, boolean>>(
    await conn.query(
      `SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls AS elevated,
              has_schema_privilege(rolname, $2, 'CREATE') AS schema_create,
              has_database_privilege(rolname, current_database(), 'CREATE') AS database_create
         FROM pg_roles WHERE rolname = $1`,
      [role, schema],
    ),
  );
  const problems = Object.entries(r)
    .filter(([, v]) => v)
    .map(([k]) => k);
  if (problems.length > 0)
    throw new Error(`ensureAppRole: ${role} would still have ${problems.join(', ')}; fix that grant or attribute first`);
}

function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  // pg.Client returns { rows }, a TypeORM QueryRunner the rows themselves.
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/** A double-quoted identifier: any name is taken literally (no case folding), none can break out of the statement. */
function ident(name: string): string {
  if (name.length === 0 || name.includes('\0')) throw new Error(`ensureAppRole: invalid identifier ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** An E'' literal, safe whatever standard_conforming_strings says (utility statements take no bind parameters). */
function literal(value: string): string {
  if (value.includes('\0')) throw new Error('ensureAppRole: a password cannot contain NUL');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function privilege(p: string): TablePrivilege {
  if (p !== 'SELECT' && p !== 'INSERT' && p !== 'UPDATE' && p !== 'DELETE') throw new Error(`ensureAppRole: unknown privilege ${p}`);
  return p;
}
