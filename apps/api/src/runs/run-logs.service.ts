import { Injectable, Logger } from '@nestjs/common';
import type { OnModuleDestroy } from '@nestjs/common';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import { RunAttemptEntity, RunEntity, RunOutputStore } from '@task-scheduler/db';
import type { OutputChunk, OutputStreamName } from '@task-scheduler/db';
import { isUuid } from '../common/pagination';
import type { Request, Response } from 'express';
import { DataSource } from 'typeorm';
import { ApiError, ErrorCode } from '../common/api-error';
import { releaseLoadSlot } from '../common/load-shedding';
import type { RequestContext } from '../auth/request-context';
import type { RunLogsQueryDto, RunLogsResponse } from './dtos/run-logs.dto';
import { RunOutputEvents } from './run-output-events';

/** Text per JSON page (and per read while following). */
const PAGE_BYTES = 1024 * 1024;
/** A follower reads new chunks this often (chunks are not notified: see RunOutputStore.append); attempt ends wake it at once. */
const POLL_MS = 250;
/** SSE comment sent when nothing else was, so proxies keep the connection and clients see it alive. */
const KEEPALIVE_MS = 15_000;
/** A follower whose socket stays full this long (it does not read) is disconnected. */
const SLOW_READER_MS = 30_000;
/** Followers one tenant may hold open on one API process. */
export const MAX_FOLLOWERS_PER_TENANT = 20;

interface Target {
  run: RunEntity;
  shardIndex: number;
  attempt: RunAttemptEntity | null;
}

/**
 * Reads an attempt's output from the run output store, as a page or as a
 * Server-Sent Events stream that follows the attempt until it ends. Output
 * is read by sequence number, so a follower that reconnects with
 * `Last-Event-ID` misses nothing and sees nothing twice.
 */
@Injectable()
export class RunLogsService implements OnModuleDestroy {
  private readonly store: RunOutputStore;
  private readonly followers = new Map<string, number>();
  private readonly stopAll = new AbortController();
  private readonly log = new Logger(RunLogsService.name);

  constructor(
    private readonly db: DataSource,
    private readonly events: RunOutputEvents,
  ) {
    this.store = new RunOutputStore(db);
  }

  onModuleDestroy(): void {
    this.stopAll.abort();
  }

  private async target(ctx: RequestContext, runId: string, shardIndex: number, attempt?: number): Promise<Target> {
    const run = isUuid(runId) ? await this.db.getRepository(RunEntity).findOneBy({ id: runId, tenantId: ctx.tenantId }) : null;
    if (!run) throw new ApiError(ErrorCode.RUN_NOT_FOUND, `run ${runId} does not exist`);
    if (shardIndex >= run.shardCount) {
      throw new ApiError(ErrorCode.VALIDATION_FAILED, `shard must be below the run's shard count (${run.shardCount})`, [
        { field: 'shard', message: `the run has ${run.shardCount} shard(s)` },
      ]);
    }
    const found = await this.db.getRepository(RunAttemptEntity).findOne({
      where: { runId: run.id, tenantId: ctx.tenantId, shardIndex, ...(attempt !== undefined ? { attempt } : {}) },
      order: { attempt: 'DESC' },
    });
    return { run, shardIndex, attempt: found };
  }

  async page(ctx: RequestContext, runId: string, q: RunLogsQueryDto): Promise<RunLogsResponse> {
    const t = await this.target(ctx, runId, q.shard ?? 0, q.attempt);
    if (!t.attempt && q.attempt !== undefined) throw this.noSuchAttempt(t, q.attempt);
    const after = q.after ?? 0;
    const { chunks, more } = t.attempt ? await this.read(t, t.attempt.attempt, after, q.stream) : { chunks: [], more: false };
    // Judged on the status read before the chunks: every chunk is stored before an attempt's end is recorded.
    const ended = t.attempt !== null && t.attempt.status !== 'running';
    return {
      runId: t.run.id,
      shardIndex: t.shardIndex,
      attempt: t.attempt?.attempt ?? null,
      attemptStatus: t.attempt?.status ?? null,
      chunks,
      nextAfter: chunks.length ? chunks[chunks.length - 1].seq : after,
      complete: ended && !more,
      stdout: t.attempt?.outputStore?.stdout ?? null,
      stderr: t.attempt?.outputStore?.stderr ?? null,
    };
  }

  /**
   * Streams the attempt's output as `chunk` events (`id: <attempt>.<seq>`), then one `end` event, then
   * closes. A reconnect with `Last-Event-ID` goes on in that attempt after that chunk; one whose attempt has
   * ended with nothing left gets 204, which tells an EventSource to stop reconnecting.
   */
  async follow(ctx: RequestContext, runId: string, q: RunLogsQueryDto, req: Request, res: Response): Promise<void> {
    const shardIndex = q.shard ?? 0;
    const resume = /^(\d{1,6})\.(\d{1,10})$/.exec(String(req.headers['last-event-id'] ?? ''));
    const wanted = resume ? Number(resume[1]) : q.attempt;
    let after = resume ? Number(resume[2]) : (q.after ?? 0);
    let t = await this.target(ctx, runId, shardIndex, wanted);
    if (wanted !== undefined && !t.attempt && FINAL_RUN_STATUSES.includes(t.run.status)) throw this.noSuchAttempt(t, wanted);
    if (resume && t.attempt && t.attempt.status !== 'running') {
      const left = await this.read(t, t.attempt.attempt, after, q.stream);
      if (left.chunks.length === 0) {
        res.status(204).end();
        return;
      }
    }
    const held = this.followers.get(ctx.tenantId) ?? 0;
    if (held >= MAX_FOLLOWERS_PER_TENANT) {
      throw new ApiError(
        ErrorCode.TOO_MANY_FOLLOWERS,
        `this tenant already follows ${held} outputs on this API process (at most ${MAX_FOLLOWERS_PER_TENANT}); close one, or read pages without follow`,
      );
    }
    this.followers.set(ctx.tenantId, held + 1);
    const gone = new AbortController();
    const onStop = (): void => gone.abort();
    req.on('close', onStop);
    this.stopAll.signal.addEventListener('abort', onStop, { once: true });
    res.status(200);
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    // A stream lasts as long as its attempt: it no longer counts against the API's in-flight bound.
    releaseLoadSlot(res);
    let lastWrite = Date.now();
    const send = async (text: string): Promise<void> => {
      lastWrite = Date.now();
      if (res.write(text) || gone.signal.aborted) return;
      // A client that does not read holds at most the socket's buffers here: nothing more is read for it, and
      // after SLOW_READER_MS it is disconnected (it holds one of its tenant's follows).
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          res.off('drain', done);
          gone.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(() => {
          gone.abort();
          res.destroy();
        }, SLOW_READER_MS);
        res.once('drain', done);
        gone.signal.addEventListener('abort', done, { once: true });
      });
    };
    try {
      let attemptNo: number | null = wanted ?? t.attempt?.attempt ?? null;
      while (!gone.signal.aborted) {
        // The attempt's status first, then its chunks: every chunk is stored before the end is recorded.
        if (attemptNo === null) {
          t = await this.target(ctx, runId, shardIndex);
          attemptNo = t.attempt?.attempt ?? null;
        } else {
          t = { ...t, attempt: await this.attemptRow(t, attemptNo) };
        }
        if (attemptNo === null || !t.attempt) {
          const run = await this.db.getRepository(RunEntity).findOneBy({ id: t.run.id });
          if (!run || FINAL_RUN_STATUSES.includes(run.status)) {
            await send(event('end', { attempt: null, attemptStatus: null, runStatus: run?.status ?? null, stdout: null, stderr: null }));
            return;
          }
        } else {
          const ended = t.attempt.status !== 'running';
          const { chunks, more } = await this.read(t, attemptNo, after, q.stream);
          for (const c of chunks) {
            await send(`id: ${attemptNo}.${c.seq}\n${event('chunk', c)}`);
            after = c.seq;
          }
          if (more) continue;
          if (ended) {
            const s = t.attempt.outputStore;
            await send(
              event('end', { attempt: attemptNo, attemptStatus: t.attempt.status, stdout: s?.stdout ?? null, stderr: s?.stderr ?? null }),
            );
            return;
          }
        }
        if (Date.now() - lastWrite >= KEEPALIVE_MS) await send(': keep-alive\n\n');
        await this.events.wait(t.run.id, POLL_MS, gone.signal);
      }
    } catch (err) {
      // The answer has started: no error response can follow, only an event saying why the stream ends.
      this.log.warn({ err, runId }, 'output stream ended by an error');
      if (!gone.signal.aborted)
        res.write(event('error', { code: ErrorCode.INTERNAL_ERROR, message: 'the output could not be read; reconnect to go on' }));
    } finally {
      req.off('close', onStop);
      this.stopAll.signal.removeEventListener('abort', onStop);
      const left = (this.followers.get(ctx.tenantId) ?? 1) - 1;
      if (left > 0) this.followers.set(ctx.tenantId, left);
      else this.followers.delete(ctx.tenantId);
      res.end();
    }
  }

  private attemptRow(t: Target, attempt: number): Promise<RunAttemptEntity | null> {
    return this.db.getRepository(RunAttemptEntity).findOneBy({ runId: t.run.id, shardIndex: t.shardIndex, attempt });
  }

  private read(t: Target, attempt: number, after: number, stream?: OutputStreamName): Promise<{ chunks: OutputChunk[]; more: boolean }> {
    return this.store.read({ runId: t.run.id, shardIndex: t.shardIndex, attempt }, after, { maxBytes: PAGE_BYTES, stream });
  }

  private noSuchAttempt(t: Target, attempt: number): ApiError {
    return new ApiError(ErrorCode.ATTEMPT_NOT_FOUND, `run ${t.run.id} has no attempt ${attempt} on shard ${t.shardIndex}`);
  }
}

function event(name: string, data: unknown): string {
  // JSON has no raw newlines, so one `data:` line carries it.
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
