/* Pipelines over HTTP for e2e suites: tasks, pipelines and pipeline runs of one tenant,
 * plus the clock a shell step records of itself, for claims about what ran when. */
import { randomBytes } from 'node:crypto';
import { FINAL_PIPELINE_RUN_STATUSES } from '@task-scheduler/contracts';
import type { TestStack } from './stack';

export interface PipelineClient {
  /** A shell task (unless `executor` says otherwise) with a unique name, one attempt and a 120 s timeout unless given. */
  createTask(body: Record<string, unknown>): Promise<string>;
  /** `POST /v1/pipelines` (the name gets a unique suffix); the created pipeline. */
  createPipeline(body: Record<string, unknown>): Promise<any>;
  /** `POST /v1/pipelines/{id}/runs`; the queued pipeline run. */
  startPipelineRun(pipelineId: string, params?: Record<string, unknown>): Promise<any>;
  getPipelineRun(id: string): Promise<any>;
  /** Polls the pipeline run until `until` holds (default: a final status), at most `timeoutMs`. */
  waitForPipelineRun(id: string, until?: (run: any) => boolean, timeoutMs?: number): Promise<any>;
  /** Any request as this client's tenant. */
  request: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => ReturnType<TestStack['request']>;
}

export function pipelineClient(stack: TestStack, apiKey: string): PipelineClient {
  const request: PipelineClient['request'] = (method, path, body, headers) => stack.request(method, path, { body, apiKey, headers });
  const getPipelineRun = async (id: string): Promise<any> => {
    const res = await request('GET', `/v1/pipeline-runs/${id}`);
    if (res.status !== 200) throw new Error(`GET pipeline run ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  return {
    request,
    async createTask(body) {
      const res = await request('POST', '/v1/tasks', {
        executor: 'shell',
        timeoutSeconds: 120,
        retry: { maximumAttempts: 1 },
        ...body,
        name: `${body.name ?? 'task'}-${suffix()}`,
      });
      if (res.status !== 201) throw new Error(`POST /v1/tasks: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id;
    },
    async createPipeline(body) {
      const res = await request('POST', '/v1/pipelines', { ...body, name: `${body.name ?? 'pipeline'}-${suffix()}` });
      if (res.status !== 201) throw new Error(`POST /v1/pipelines: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async startPipelineRun(pipelineId, params) {
      const res = await request('POST', `/v1/pipelines/${pipelineId}/runs`, params === undefined ? {} : { params });
      if (res.status !== 202) throw new Error(`POST /v1/pipelines/${pipelineId}/runs: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    getPipelineRun,
    async waitForPipelineRun(id, until = (r) => FINAL_PIPELINE_RUN_STATUSES.includes(r.status), timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const run = await getPipelineRun(id);
        if (until(run)) return run;
        if (Date.now() > deadline) {
          const steps = (run.steps ?? []).map((s: any) => `${s.key}=${s.status}${s.reason ? `/${s.reason}` : ''}`).join(' ');
          throw new Error(`pipeline run ${id} still ${run.status} after ${timeoutMs} ms (steps: ${steps})`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}

function suffix(): string {
  return randomBytes(4).toString('hex');
}

/** The step `key` of a pipeline run (fails loudly when the run has none). */
export function stepOf(run: any, key: string): any {
  const step = (run.steps ?? []).find((s: any) => s.key === key);
  if (!step) throw new Error(`pipeline run ${run.id} has no step ${key} (steps: ${(run.steps ?? []).map((s: any) => s.key).join(', ')})`);
  return step;
}

/** `{ key: [status, reason] }` of every step, for one readable assertion over a whole run. */
export function stepStates(run: any): Record<string, [string, string | null]> {
  return Object.fromEntries((run.steps ?? []).map((s: any) => [s.key, [s.status, s.reason]]));
}

/**
 * A shell script that records its own start and end (ms since the epoch, from the
 * machine's clock inside the sandbox) as outputs `start` and `end` around `body`.
 */
export function timed(body: string): string {
  return ['echo "start=$(date +%s%3N)" >> "$TASK_OUTPUTS"', body, 'echo "end=$(date +%s%3N)" >> "$TASK_OUTPUTS"'].join('\n');
}

export interface Interval {
  start: number;
  end: number;
}

/** The interval a {@link timed} step's outputs recorded. */
export function intervalOf(outputs: any): Interval {
  const start = Number(outputs?.start);
  const end = Number(outputs?.end);
  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new Error(`outputs without a recorded clock: ${JSON.stringify(outputs)}`);
  return { start, end };
}

export function overlap(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end;
}

/** The most intervals open at one instant (an end at the same ms as a start does not overlap it). */
export function maxConcurrent(intervals: readonly Interval[]): number {
  const events = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  events.sort((x, y) => x.t - y.t || x.d - y.d);
  let open = 0;
  let max = 0;
  for (const e of events) {
    open += e.d;
    max = Math.max(max, open);
  }
  return max;
}
