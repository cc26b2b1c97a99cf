import type { Logger } from '@nestjs/common';

/**
 * A background pass of the API (the schedule and run reconcilers): run at an interval, never two passes at
 * once in this process, a failed pass logged and retried at the next interval, and stopped by waiting for
 * the pass in flight at shutdown.
 */
export class PeriodicJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly what: string,
    private readonly logger: Logger,
    private readonly pass: () => Promise<unknown>,
  ) {}

  /** Every `seconds` (0: not again), and once at once when `runNow`. */
  start(seconds: number, opts: { runNow?: boolean } = {}): void {
    if (opts.runNow) this.tick();
    if (seconds > 0) {
      this.timer = setInterval(() => this.tick(), seconds * 1000);
      this.timer.unref();
    }
  }

  private tick(): void {
    this.running ??= this.pass()
      .catch((err: unknown) => this.logger.warn({ err }, `${this.what} failed; next try at the next interval`))
      .finally(() => (this.running = null));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
