import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnModuleDestroy } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { RUN_OUTPUT_CHANNEL } from '@task-scheduler/db';
import { Client } from 'pg';
import { APP_CONFIG } from '../infra/tokens';

/**
 * Wakes followers of a run's output when a worker stores a chunk or an
 * attempt starts or ends: one LISTEN connection per API process, opened by
 * the first follower and kept; notifications carry the run id. A follower
 * also wakes on its own after `maxWaitMs`, so a dropped connection (or a
 * notification PostgreSQL never sent) delays output by at most that, and
 * the connection is opened again by the next wait.
 */
@Injectable()
export class RunOutputEvents implements OnModuleDestroy {
  private readonly log = new Logger(RunOutputEvents.name);
  private readonly waiters = new Map<string, Set<() => void>>();
  private client: Client | null = null;
  private connecting: Promise<void> | null = null;
  private closed = false;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Resolves when the run's output changes, after `maxWaitMs`, or when `signal` aborts, whichever is first. */
  async wait(runId: string, maxWaitMs: number, signal: AbortSignal): Promise<void> {
    if (this.closed || signal.aborted) return;
    void this.listen();
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(runId) ?? new Set<() => void>();
      this.waiters.set(runId, set);
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(runId) === set) this.waiters.delete(runId);
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  private listen(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve();
    this.connecting ??= (async () => {
      const client = new Client({ connectionString: this.config.DATABASE_URL, application_name: 'task-scheduler-api-output' });
      client.on('notification', (n) => {
        if (n.channel !== RUN_OUTPUT_CHANNEL || !n.payload) return;
        for (const wake of [...(this.waiters.get(n.payload) ?? [])]) wake();
      });
      client.on('error', (err) => {
        this.log.warn(`output notifications lost (${err.message}); followers poll until the next connect`);
        if (this.client === client) this.client = null;
        void client.end().catch(() => undefined);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${RUN_OUTPUT_CHANNEL}`);
        if (this.closed) await client.end();
        else this.client = client;
      } catch (err) {
        this.log.warn(`output notifications unavailable (${(err as Error).message}); followers poll`);
        await client.end().catch(() => undefined);
      }
    })().finally(() => (this.connecting = null));
    return this.connecting;
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    await this.connecting;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }
}
