/* Run output as it is printed: stored outside Temporal history while the attempt runs, read as pages or
 * followed live as Server-Sent Events, masked, capped, and kept when the worker is killed with SIGKILL. */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';
import { eventually } from '../support/eventually';

let stack: TestStack;
const STORE_CAP = 200 * 1024;

beforeAll(async () => {
  stack = await startStack('output', { env: { OUTPUT_STORE_CAP_BYTES: String(STORE_CAP), OUTPUT_FLUSH_MS: '100' } });
});
afterAll(async () => stack?.stop());

async function createTask(body: Record<string, unknown>, s: TestStack = stack): Promise<string> {
  const res = await s.request('POST', '/v1/tasks', { body: { executor: 'shell', retry: { maximumAttempts: 1 }, ...body } });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function trigger(taskId: string, s: TestStack = stack): Promise<string> {
  const res = await s.request('POST', `/v1/tasks/${taskId}/runs`);
  expect(res.status).toBe(202);
  return res.body.id;
}

interface SseEvent {
  event: string;
  id?: string;
  data: any;
}

/** Follows a run's output; `onEvent` sees each event as it arrives. Bounded by `timeoutMs`. */
async function follow(
  runId: string,
  onEvent: (e: SseEvent) => Promise<void> | void,
  opts: { query?: string; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<{ status: number; contentType: string | null; events: SseEvent[] }> {
  const res = await fetch(`${stack.baseUrl}/v1/runs/${runId}/logs?follow=true${opts.query ?? ''}`, {
    headers: { 'x-api-key': stack.apiKey, ...(opts.headers ?? {}) },
    signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
  });
  const events: SseEvent[] = [];
  if (res.status !== 200 || !res.body) return { status: res.status, contentType: res.headers.get('content-type'), events };
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(part, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const e: SseEvent = { event: 'message', data: null };
      let isComment = true;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        isComment = false;
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'event') e.event = value;
        else if (field === 'id') e.id = value;
        else if (field === 'data') e.data = JSON.parse(value);
      }
      if (isComment) continue;
      events.push(e);
      await onEvent(e);
    }
  }
  return { status: res.status, contentType: res.headers.get('content-type'), events };
}

const textOf = (events: SseEvent[], stream?: string): string =>
  events
    .filter((e) => e.event === 'chunk' && (!stream || e.data.stream === stream))
    .map((e) => e.data.text)
    .join('');

test('a follower sees lines while the run is still running, in order, none lost, secrets masked', async () => {
  const secret = `tok-${randomBytes(6).toString('hex')}`;
  const taskId = await createTask({
    name: 'chatty-every-200ms',
    shell: {
      // The secret is printed whole, and split across two prints 200 ms apart (and so across flushes).
      script:
        'for i in $(seq 1 15); do echo "line $i $API_TOKEN"; echo "err $i" >&2; sleep 0.2; done; ' +
        'printf "%s" "${API_TOKEN%????}"; sleep 0.3; echo "${API_TOKEN#${API_TOKEN%????}} tail"',
      secretEnv: { API_TOKEN: secret },
    },
  });
  const runId = await trigger(taskId);
  const statusesAtChunks: string[] = [];
  const { status, contentType, events } = await follow(runId, async (e) => {
    if (e.event === 'chunk' && statusesAtChunks.length < 3) {
      statusesAtChunks.push((await stack.request('GET', `/v1/runs/${runId}?output=omit`)).body.status);
    }
  });
  expect(status).toBe(200);
  expect(contentType).toMatch(/^text\/event-stream/);
  // The first chunks arrived while the run was running: output is read as it is printed, not after the attempt.
  expect(statusesAtChunks[0]).toBe('running');

  const out = textOf(events, 'stdout');
  expect(out).toBe(`${Array.from({ length: 15 }, (_, i) => `line ${i + 1} ***\n`).join('')}*** tail\n`);
  expect(textOf(events, 'stderr')).toBe(Array.from({ length: 15 }, (_, i) => `err ${i + 1}\n`).join(''));
  expect(JSON.stringify(events)).not.toContain(secret);
  expect(JSON.stringify(events)).not.toContain(secret.slice(0, secret.length - 4));
  // Chunk ids are the sequence, strictly increasing from 1, with none missing.
  // Event ids are <attempt>.<seq>.
  expect(events.filter((e) => e.event === 'chunk').every((e) => /^1\.\d+$/.test(e.id ?? ''))).toBe(true);
  const seqs = events.filter((e) => e.event === 'chunk').map((e) => Number(e.id?.split('.')[1]));
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  const end = events[events.length - 1];
  expect(end.event).toBe('end');
  expect(end.data).toMatchObject({ attempt: 1, attemptStatus: 'succeeded' });
  expect(end.data.stdout).toEqual({ bytes: expect.any(Number), storedBytes: expect.any(Number), truncated: false });

  // Reconnecting with Last-Event-ID goes on after that chunk: nothing twice, nothing missed.
  const resumed = await follow(runId, () => undefined, { headers: { 'last-event-id': `1.${seqs[4]}` } });
  expect(resumed.events.filter((e) => e.event === 'chunk').map((e) => Number(e.id?.split('.')[1]))).toEqual(seqs.slice(5));
  // An EventSource reconnecting after the end (everything seen) gets 204: the signal to stop reconnecting.
  const afterEnd = await follow(runId, () => undefined, { headers: { 'last-event-id': `1.${seqs[seqs.length - 1]}` } });
  expect(afterEnd.status).toBe(204);

  // The same output as a page, and the run without its output.
  const page = await stack.request('GET', `/v1/runs/${runId}/logs`);
  expect(page.status).toBe(200);
  expect(page.body).toMatchObject({ runId, shardIndex: 0, attempt: 1, attemptStatus: 'succeeded', complete: true });
  expect(
    page.body.chunks
      .filter((c: any) => c.stream === 'stdout')
      .map((c: any) => c.text)
      .join(''),
  ).toBe(out);
  const stderrOnly = await stack.request('GET', `/v1/runs/${runId}/logs?stream=stderr`);
  expect(stderrOnly.body.chunks.every((c: any) => c.stream === 'stderr')).toBe(true);
  const omitted = await stack.request('GET', `/v1/runs/${runId}?output=omit`);
  expect(omitted.body).not.toHaveProperty('stdout');
  expect(omitted.body.attempts[0]).not.toHaveProperty('stdout');
  expect(omitted.body.attempts[0].output.stdout.bytes).toBe(end.data.stdout.bytes);
  const full = await stack.request('GET', `/v1/runs/${runId}`);
  expect(full.body.stdout).toContain('line 15 ***');
});

test('a chatty run: all of its output in the store (capped and flagged), only a bounded tail in Temporal history', async () => {
  // 300 KB on stdout (over the 200 KiB store cap of this stack) and 100 KB on stderr.
  const taskId = await createTask({
    name: 'prints-300kb',
    shell: { script: 'for i in $(seq 1 3000); do printf "%099d\\n" $i; done; for i in $(seq 1 1000); do printf "%099d\\n" $i >&2; done' },
  });
  const runId = await trigger(taskId);
  const run = await stack.waitForRun(runId, undefined, 60_000);
  expect(run.status).toBe('succeeded');
  expect(run.attempts[0].output).toEqual({
    stdout: { bytes: 300_000, storedBytes: STORE_CAP, truncated: true },
    stderr: { bytes: 100_000, storedBytes: 100_000, truncated: false },
  });

  // Page through the store: exactly the first STORE_CAP bytes of stdout and all of stderr, in order.
  let after = 0;
  let stdout = '';
  let stderr = '';
  for (let pages = 0; pages < 50; pages++) {
    const page = await stack.request('GET', `/v1/runs/${runId}/logs?after=${after}`);
    expect(page.status).toBe(200);
    for (const c of page.body.chunks) {
      if (c.stream === 'stdout') stdout += c.text;
      else stderr += c.text;
    }
    after = page.body.nextAfter;
    if (page.body.complete) break;
  }
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `${String(i + 1).padStart(99, '0')}\n`).join('');
  expect(stdout).toBe(lines(3000).slice(0, STORE_CAP));
  expect(stderr).toBe(lines(1000));

  // The run's own stdout is the tail that history carried: at most OUTPUT_TAIL_BYTES (4 KiB), ending with the last line.
  expect(Buffer.byteLength(run.stdout)).toBeLessThanOrEqual(4096);
  expect(run.stdout.endsWith(`${String(3000).padStart(99, '0')}\n`)).toBe(true);
  expect(run.stdoutTruncated).toBe(true);

  const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  try {
    const history = await new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE }).workflow
      .getHandle(run.workflowId)
      .fetchHistory();
    const bytes = Buffer.byteLength(JSON.stringify(history));
    // 400 KB printed; the history holds two 4 KiB tails (as base64 JSON payloads) and its usual events.
    expect(bytes).toBeLessThan(48 * 1024);
  } finally {
    await connection.close();
  }
});

test('output with a NUL byte is stored (as U+FFFD) and the run succeeds', async () => {
  const taskId = await createTask({ name: 'prints-nul', shell: { script: 'printf "a\\000b\\n"' } });
  const run = await stack.waitForRun(await trigger(taskId), undefined, 60_000);
  expect(run.status).toBe('succeeded');
  expect(run.stdout).toBe('a\uFFFDb\n');
  const page = await stack.request('GET', `/v1/runs/${run.id}/logs`);
  expect(page.body.chunks.map((c: any) => c.text).join('')).toBe('a\uFFFDb\n');
});

test('bad requests: unknown run, attempt or shard, and a bad follow value', async () => {
  const taskId = await createTask({ name: 'quick', shell: { script: 'echo hi' } });
  const run = await stack.waitForRun(await trigger(taskId), undefined, 60_000);
  const missing = await stack.request('GET', `/v1/runs/00000000-0000-4000-8000-000000000000/logs`);
  expect(missing.status).toBe(404);
  expect(missing.body.error.code).toBe('RUN_NOT_FOUND');
  const noAttempt = await stack.request('GET', `/v1/runs/${run.id}/logs?attempt=7`);
  expect(noAttempt.status).toBe(404);
  expect(noAttempt.body.error.code).toBe('ATTEMPT_NOT_FOUND');
  const noShard = await stack.request('GET', `/v1/runs/${run.id}/logs?shard=3`);
  expect(noShard.status).toBe(400);
  expect(noShard.body.error.code).toBe('VALIDATION_FAILED');
  const badFollow = await stack.request('GET', `/v1/runs/${run.id}/logs?follow=yes`);
  expect(badFollow.status).toBe(400);
  // Following a finished attempt answers its output and the end at once.
  const done = await follow(run.id, () => undefined, { timeoutMs: 10_000 });
  expect(textOf(done.events)).toBe('hi\n');
  expect(done.events.map((e) => e.event)).toEqual(['chunk', 'end']);
  // Following an attempt a finished run does not have: 404, not a wait.
  const noAttemptFollow = await stack.request('GET', `/v1/runs/${run.id}/logs?follow=true&attempt=7`);
  expect([noAttemptFollow.status, noAttemptFollow.body.error.code]).toEqual([404, 'ATTEMPT_NOT_FOUND']);
  // Another tenant's key sees no such run, as a page or as a stream.
  const other = await stack.createTenant(`output-other-${randomBytes(3).toString('hex')}`);
  const foreign = await stack.request('GET', `/v1/runs/${run.id}/logs`, { apiKey: other.apiKey });
  expect(foreign.status).toBe(404);
  const foreignFollow = await stack.request('GET', `/v1/runs/${run.id}/logs?follow=true`, { apiKey: other.apiKey });
  expect([foreignFollow.status, foreignFollow.body.error.code]).toEqual([404, 'RUN_NOT_FOUND']);
  const badOutput = await stack.request('GET', `/v1/runs/${run.id}?output=none`);
  expect(badOutput.status).toBe(400);
});

test('a tenant holds at most 20 open follows per API process; closing one frees its place', async () => {
  const taskId = await createTask({ name: 'long-quiet', shell: { script: 'sleep 60' }, timeoutSeconds: 120 });
  const runId = await trigger(taskId);
  await stack.waitForRun(runId, (r) => r.status === 'running', 60_000);
  const open = Array.from({ length: 20 }, () => new AbortController());
  try {
    const answers = await Promise.all(
      open.map((c) =>
        fetch(`${stack.baseUrl}/v1/runs/${runId}/logs?follow=true`, { headers: { 'x-api-key': stack.apiKey }, signal: c.signal }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const refused = await stack.request('GET', `/v1/runs/${runId}/logs?follow=true`);
    expect([refused.status, refused.body.error.code]).toEqual([429, 'TOO_MANY_FOLLOWERS']);
    // Pages are not follows.
    expect((await stack.request('GET', `/v1/runs/${runId}/logs`)).status).toBe(200);
    open[0].abort();
    const again = await eventually(
      () =>
        fetch(`${stack.baseUrl}/v1/runs/${runId}/logs?follow=true`, {
          headers: { 'x-api-key': stack.apiKey },
          signal: open[1].signal,
        }).then(
          (r) => r.status,
          () => 0,
        ),
      (status) => status === 200,
      10_000,
      200,
    );
    expect(again).toBe(200);
  } finally {
    for (const c of open) c.abort();
    await stack.request('POST', `/v1/runs/${runId}/cancel`);
    await stack.waitForRun(runId, undefined, 60_000);
  }
});

describe('worker killed with SIGKILL', () => {
  let crash: TestStack;
  beforeAll(async () => {
    // No in-process workers: the shell queue is served by a worker process this test kills.
    crash = await startStack('output-crash', { workers: false, env: { HEARTBEAT_TIMEOUT_SECONDS: '5' } });
  });
  afterAll(async () => crash?.stop());

  test('a task printing a line a second, its worker killed at 10 s: attempt 1 keeps at least 9 lines', async () => {
    const workflows = crash.spawnApp('worker', { WORKER_QUEUES: 'workflows,http', WORKER_HTTP_PORT: '-1' });
    let shell: AppProcess | null = crash.spawnApp('worker', { WORKER_QUEUES: 'shell', WORKER_HTTP_PORT: '-1', HEARTBEAT_SECONDS: '1' });
    let second: AppProcess | null = null;
    try {
      const taskId = await createTask(
        {
          name: 'a-line-a-second',
          shell: { script: 'for i in $(seq 1 40); do echo "tick $i"; sleep 1; done' },
          timeoutSeconds: 120,
          retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 },
        },
        crash,
      );
      const runId = await trigger(taskId, crash);
      // The clock starts when the task's first line is stored (sandbox setup before it does not count).
      await eventually(
        async () => (await crash.request('GET', `/v1/runs/${runId}/logs`)).body,
        (b) => typeof b?.chunks?.[0]?.text === 'string' && b.chunks[0].text.startsWith('tick 1'),
        60_000,
        100,
      );
      await new Promise((r) => setTimeout(r, 10_000));
      shell.child.kill('SIGKILL');
      await shell.exited;
      shell = null;

      const page = await crash.request('GET', `/v1/runs/${runId}/logs?attempt=1`);
      expect(page.status).toBe(200);
      const text = page.body.chunks.map((c: any) => c.text).join('');
      const ticks = text.split('\n').filter(Boolean);
      expect(ticks.length).toBeGreaterThanOrEqual(9);
      expect(ticks).toEqual(Array.from({ length: ticks.length }, (_, i) => `tick ${i + 1}`));
      expect(page.body.complete).toBe(false);

      // A new worker takes attempt 2 after the heartbeat timeout; attempt 1's stored lines stay as they were.
      second = crash.spawnApp('worker', { WORKER_QUEUES: 'shell', WORKER_HTTP_PORT: '-1', HEARTBEAT_SECONDS: '1' });
      await eventually(
        async () => (await crash.request('GET', `/v1/runs/${runId}/logs?attempt=2`)).body,
        (b) => typeof b?.chunks?.[0]?.text === 'string' && b.chunks[0].text.startsWith('tick 1'),
        60_000,
        500,
      );
      const again = await crash.request('GET', `/v1/runs/${runId}/logs?attempt=1`);
      expect(again.body.chunks.map((c: any) => c.text).join('')).toBe(text);
      expect((await crash.request('POST', `/v1/runs/${runId}/cancel`)).status).toBe(202);
      await crash.waitForRun(runId, undefined, 60_000);
    } finally {
      if (shell) await shell.stop();
      if (second) await second.stop();
      await workflows.stop();
    }
  });
});
