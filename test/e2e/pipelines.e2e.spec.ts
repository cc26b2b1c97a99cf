/* Pipeline runs end to end: scheduling by dependencies and trigger rules, failure policies that
 * kill what runs, outputs and fan-out between steps, retry, cancel, tenant slots and the children
 * in Temporal. Real API, Temporal dev server and workers, real PostgreSQL. Claims about which steps
 * overlapped rest on the clock each shell step records of itself (its `start`/`end` outputs), not on
 * the times the API reports. Definitions and their validation are test/e2e/pipelines-api.e2e.spec.ts. */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { processesMatching } from '../support/processes';
import { checkReplayAndRecord } from '../support/replay-fixtures';
import { intervalOf, maxConcurrent, overlap, pipelineClient, stepOf, stepStates, timed } from '../support/pipelines';
import type { PipelineClient } from '../support/pipelines';

const TIMEOUT_MS = 120_000;
/** 100 child runs, 5 at a time: each costs a child start, a slot and a sandbox; on a loaded 2-core machine ~3 s. */
const FAN_OUT_TIMEOUT_MS = 180_000;
/** A secret value of a task: it must never show in outputs. */
const SECRET = `s3cr3t-${randomBytes(6).toString('hex')}`;

let stack: TestStack;
let p: PipelineClient;
let connection: Connection;
let client: Client;
let http: ReturnType<typeof createServer> | undefined;

beforeAll(async () => {
  // HTTP steps call a server of the test on loopback.
  stack = await startStack('pipelines', { env: { HTTP_ALLOW_CIDRS: '127.0.0.1/32' } });
  const tenant = await stack.createTenant(`pipelines-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 50 });
  p = pipelineClient(stack, tenant.apiKey);
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection });
});
afterAll(async () => {
  const server = http;
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  await connection?.close();
  await stack?.stop();
});

/** A `sleep` argument no other process on the machine has, so pgrep finds exactly this step's processes. */
function uniqueSleepSeconds(): string {
  return `60.${Math.floor(Math.random() * 1e6)}${Date.now() % 1000}`;
}

async function runOf(runId: string): Promise<any> {
  const res = await p.request('GET', `/v1/runs/${runId}`);
  if (res.status !== 200) throw new Error(`GET run ${runId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * A task whose script runs two `sleep`s of one unique length (a process group of several, so a kill
 * of the shell alone would leave one behind); `marker` is what pgrep finds of exactly these.
 */
async function longTask(name: string): Promise<{ task: string; marker: string }> {
  const seconds = uniqueSleepSeconds();
  const task = await p.createTask({ name, shell: { script: `sleep ${seconds} & sleep ${seconds}; wait` }, timeoutSeconds: 300 });
  return { task, marker: `sleep ${seconds}` };
}

/** Waits until the step is running and at least `count` of its processes are alive. */
async function waitForProcesses(pipelineRunId: string, key: string, marker: string, count: number): Promise<void> {
  await p.waitForPipelineRun(pipelineRunId, (r) => stepOf(r, key).status === 'running' || r.finishedAt !== null, 30_000);
  await eventually(
    () => processesMatching(marker).length,
    (n) => n >= count,
    15_000,
    100,
  );
}

describe('scheduling by dependencies', () => {
  test(
    'a diamond runs its middle steps side by side and the join after both; with maxParallelism 1 nothing overlaps',
    async () => {
      const quick = await p.createTask({ name: 'quick', shell: { script: timed('true') } });
      const slow = await p.createTask({ name: 'slow', shell: { script: timed('sleep 2') } });
      const diamond = (maxParallelism: number) =>
        p.createPipeline({
          name: `diamond-${maxParallelism}`,
          maxParallelism,
          steps: [
            { key: 'a', task: quick },
            { key: 'b', task: slow, dependsOn: ['a'] },
            { key: 'c', task: slow, dependsOn: ['a'] },
            { key: 'd', task: quick, dependsOn: ['b', 'c'] },
          ],
        });
      const [wide, narrow] = await Promise.all([diamond(10), diamond(1)]);
      const [wideRun, narrowRun] = await Promise.all(
        [wide, narrow].map(async (pl) => p.waitForPipelineRun((await p.startPipelineRun(pl.id)).id)),
      );

      for (const run of [wideRun, narrowRun]) {
        expect([run.status, run.error]).toEqual(['succeeded', null]);
        expect(stepStates(run)).toEqual({
          a: ['succeeded', 'ran'],
          b: ['succeeded', 'ran'],
          c: ['succeeded', 'ran'],
          d: ['succeeded', 'ran'],
        });
        const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((k) => intervalOf(stepOf(run, k).outputs));
        expect(b.start).toBeGreaterThanOrEqual(a.end);
        expect(c.start).toBeGreaterThanOrEqual(a.end);
        expect(d.start).toBeGreaterThanOrEqual(Math.max(b.end, c.end));
      }
      const clocks = (run: any) => ['b', 'c'].map((k) => intervalOf(stepOf(run, k).outputs));
      const [wb, wc] = clocks(wideRun);
      expect(overlap(wb, wc)).toBe(true);
      const [nb, nc] = clocks(narrowRun);
      expect(overlap(nb, nc)).toBe(false);
    },
    TIMEOUT_MS,
  );

  test(
    'a tenant allowed one run at a time still completes three parallel steps, one after another',
    async () => {
      const single = await stack.createTenant(`pipelines-one-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 1 });
      const q = pipelineClient(stack, single.apiKey);
      const task = await q.createTask({ name: 'one-second', shell: { script: timed('sleep 1') } });
      const pipeline = await q.createPipeline({
        name: 'three-wide',
        maxParallelism: 10,
        steps: ['s1', 's2', 's3'].map((key) => ({ key, task })),
      });
      const run = await q.waitForPipelineRun((await q.startPipelineRun(pipeline.id)).id, undefined, 60_000);
      expect([run.status, run.error]).toEqual(['succeeded', null]);
      const clocks = ['s1', 's2', 's3'].map((k) => intervalOf(stepOf(run, k).outputs));
      expect(maxConcurrent(clocks)).toBe(1);
    },
    TIMEOUT_MS,
  );
});

describe('versions', () => {
  test(
    'editing a pipeline does not change a run in flight; the next run takes the new version',
    async () => {
      const wait = await p.createTask({ name: 'wait', shell: { script: 'sleep 2' } });
      const say = await p.createTask({ name: 'say', shell: { script: 'echo "$MSG"' } });
      const stepsOf = (msg: string) => [
        { key: 'first', task: wait },
        { key: 'second', task: say, dependsOn: ['first'], overrides: { env: { MSG: msg } } },
      ];
      const pipeline = await p.createPipeline({ name: 'versions', steps: stepsOf('v1') });
      const started = await p.startPipelineRun(pipeline.id);
      await p.waitForPipelineRun(started.id, (r) => stepOf(r, 'first').status === 'running', 30_000);

      const edited = await p.request(
        'PATCH',
        `/v1/pipelines/${pipeline.id}`,
        { steps: [...stepsOf('v2'), { key: 'third', task: say, dependsOn: ['second'] }] },
        { 'if-match': '"1"' },
      );
      expect([edited.status, edited.body.error?.code, edited.body.version]).toEqual([200, undefined, 2]);

      const old = await p.waitForPipelineRun(started.id);
      expect([old.status, old.pipelineVersion]).toEqual(['succeeded', 1]);
      expect(old.steps.map((s: any) => s.key)).toEqual(['first', 'second']);
      expect((await runOf(stepOf(old, 'second').runId)).stdout).toBe('v1\n');

      const next = await p.waitForPipelineRun((await p.startPipelineRun(pipeline.id)).id);
      expect([next.status, next.pipelineVersion]).toEqual(['succeeded', 2]);
      expect(stepStates(next)).toEqual({ first: ['succeeded', 'ran'], second: ['succeeded', 'ran'], third: ['succeeded', 'ran'] });
      expect((await runOf(stepOf(next, 'second').runId)).stdout).toBe('v2\n');
    },
    TIMEOUT_MS,
  );
});

describe('failure policies and trigger rules', () => {
  test(
    'fail_fast: a failing step cancels a running one, whose whole process group dies, and skips what has not started',
    async () => {
      const { task: long, marker } = await longTask('long');
      // Fails once the long step's processes had time to start (the test checks they did).
      const boom = await p.createTask({ name: 'boom', shell: { script: 'sleep 2; echo boom >&2; exit 1' } });
      const quick = await p.createTask({ name: 'after', shell: { command: 'true' } });
      const pipeline = await p.createPipeline({
        name: 'fail-fast',
        failurePolicy: 'fail_fast',
        steps: [
          { key: 'long', task: long },
          { key: 'boom', task: boom },
          { key: 'after_long', task: quick, dependsOn: ['long'] },
          { key: 'after_boom', task: quick, dependsOn: ['boom'] },
        ],
      });
      const started = await p.startPipelineRun(pipeline.id);
      await waitForProcesses(started.id, 'long', marker, 2);

      const run = await p.waitForPipelineRun(started.id, undefined, 30_000);
      expect(run.status).toBe('failed');
      expect(run.error).toContain('boom');
      expect(stepStates(run)).toEqual({
        long: ['cancelled', 'fail_fast'],
        boom: ['failed', 'ran'],
        after_long: ['skipped', 'fail_fast'],
        after_boom: ['skipped', 'fail_fast'],
      });
      // The pipeline waits for its cancelled children: by the time it is final, the processes are gone.
      expect(processesMatching(marker)).toEqual([]);
      expect((await runOf(stepOf(run, 'long').runId)).status).toBe('cancelled');
      expect(stepOf(run, 'after_long').runId).toBeNull();
    },
    TIMEOUT_MS,
  );

  test(
    'fail_fast and a fan-out: the first failed item cancels its running siblings and every other step, and starts no more items',
    async () => {
      // Item 0 fails after a second (once its siblings are running); the others would sleep far longer.
      const itemSleep = `sleep ${uniqueSleepSeconds()}`;
      const item = await p.createTask({
        name: 'item',
        shell: { script: `if [ "$ITEM_INDEX" = 0 ]; then sleep 1; exit 1; fi; ${itemSleep}` },
        timeoutSeconds: 300,
      });
      const { task: long, marker } = await longTask('long');
      const quick = await p.createTask({ name: 'quick', shell: { command: 'true' } });
      const pipeline = await p.createPipeline({
        name: 'fail-fast-items',
        maxParallelism: 4,
        steps: [
          { key: 'long', task: long },
          { key: 'fan', task: item, forEach: [0, 1, 2, 3, 4, 5] },
          { key: 'after', task: quick, dependsOn: ['fan'] },
        ],
      });
      const started = await p.startPipelineRun(pipeline.id);
      let run: any;
      try {
        await waitForProcesses(started.id, 'long', marker, 2);
        run = await p.waitForPipelineRun(started.id, undefined, 30_000);
      } finally {
        // Whatever the outcome, no sleeper outlives the test.
        if (!run) await p.request('POST', `/v1/pipeline-runs/${started.id}/cancel`);
      }
      expect(run.status).toBe('failed');
      expect(stepStates(run)).toEqual({
        long: ['cancelled', 'fail_fast'],
        fan: ['failed', 'ran'],
        after: ['skipped', 'fail_fast'],
      });
      // Items 1 and 2 were running beside item 0 (4 slots: long and three items) and were cancelled; 3-5 never started.
      const items = new Map(stepOf(run, 'fan').items.map((i: any) => [i.itemIndex, i.status]));
      expect(items.get(0)).toBe('failed');
      expect(items.get(1)).toBe('cancelled');
      expect(items.get(2)).toBe('cancelled');
      for (const i of [3, 4, 5]) expect(items.get(i) ?? 'not started').toBe('not started');
      expect(stepOf(run, 'fan').error).toContain('item 0');
      expect(processesMatching(marker)).toEqual([]);
      expect(processesMatching(itemSleep)).toEqual([]);
    },
    TIMEOUT_MS,
  );

  test(
    'continue: a failure does not stop an independent branch; its all_success downstream is skipped; the run is failed',
    async () => {
      const bad = await p.createTask({ name: 'bad', shell: { script: 'echo bad >&2; exit 1' } });
      const good = await p.createTask({ name: 'good', shell: { script: 'sleep 1' } });
      const quick = await p.createTask({ name: 'quick', shell: { command: 'true' } });
      const tooSlow = await p.createTask({ name: 'too-slow', shell: { script: 'sleep 30' }, timeoutSeconds: 1 });
      const pipeline = await p.createPipeline({
        name: 'continue',
        failurePolicy: 'continue',
        steps: [
          { key: 'bad', task: bad },
          { key: 'bad_next', task: quick, dependsOn: ['bad'] },
          { key: 'good', task: good },
          { key: 'good_next', task: quick, dependsOn: ['good'] },
          { key: 'too_slow', task: tooSlow },
        ],
      });
      const run = await p.waitForPipelineRun((await p.startPipelineRun(pipeline.id)).id);
      expect(run.status).toBe('failed');
      expect(run.error).toContain('bad');
      expect(run.error).toContain('too_slow');
      expect(stepStates(run)).toEqual({
        bad: ['failed', 'ran'],
        bad_next: ['skipped', 'trigger_rule'],
        good: ['succeeded', 'ran'],
        good_next: ['succeeded', 'ran'],
        // A timed-out run is a failed step.
        too_slow: ['failed', 'ran'],
      });
      expect((await runOf(stepOf(run, 'too_slow').runId)).status).toBe('timed_out');
      // The independent branch went on after the failure.
      expect(Date.parse(stepOf(run, 'good_next').startedAt)).toBeGreaterThanOrEqual(Date.parse(stepOf(run, 'bad').finishedAt));
    },
    TIMEOUT_MS,
  );

  test(
    'an on-failure branch (one_failed) runs only when its upstream fails, and a handled failure leaves the run succeeded',
    async () => {
      const up = await p.createTask({ name: 'up', shell: { script: 'exit "$CODE"' } });
      const handler = await p.createTask({ name: 'handler', shell: { script: 'echo handled' } });
      const pipeline = await p.createPipeline({
        name: 'on-failure',
        parameters: [{ name: 'code', default: 0 }],
        steps: [
          { key: 'up', task: up, overrides: { env: { CODE: '{{ params.code }}' } } },
          { key: 'handler', task: handler, dependsOn: ['up'], triggerRule: 'one_failed' },
        ],
      });
      const [fine, broken] = await Promise.all(
        [{ code: 0 }, { code: 3 }].map(async (params) => p.waitForPipelineRun((await p.startPipelineRun(pipeline.id, params)).id)),
      );

      expect([fine.status, fine.error]).toEqual(['succeeded', null]);
      expect(stepStates(fine)).toEqual({ up: ['succeeded', 'ran'], handler: ['skipped', 'trigger_rule'] });
      expect(stepOf(fine, 'handler').runId).toBeNull();

      expect([broken.status, broken.error]).toEqual(['succeeded', null]);
      expect(stepStates(broken)).toEqual({ up: ['failed', 'ran'], handler: ['succeeded', 'ran'] });
      expect((await runOf(stepOf(broken, 'up').runId)).exitCode).toBe(3);
      expect((await runOf(stepOf(broken, 'handler').runId)).stdout).toBe('handled\n');
    },
    TIMEOUT_MS,
  );
});

describe('skips', () => {
  test(
    'a false `when` and an empty forEach skip their step; none_failed runs past skips, all_success does not; a failing item fails its step',
    async () => {
      const count = await p.createTask({ name: 'count', shell: { script: 'echo count=0 >> "$TASK_OUTPUTS"' } });
      const echo = await p.createTask({ name: 'echo', shell: { script: 'echo "item $ITEM"' } });
      const picky = await p.createTask({ name: 'picky', shell: { script: 'test "$ITEM" != 1' } });
      const gated = await p.createPipeline({
        name: 'skips',
        parameters: [{ name: 'regions', default: [] }],
        steps: [
          { key: 'count', task: count },
          { key: 'gate', task: echo, dependsOn: ['count'], when: 'steps.count.outputs.count != "0"' },
          { key: 'each', task: echo, dependsOn: ['count'], forEach: '{{ params.regions }}' },
          { key: 'strict', task: echo, dependsOn: ['gate', 'each'] },
          { key: 'lenient', task: echo, dependsOn: ['gate', 'each'], triggerRule: 'none_failed' },
        ],
      });
      const items = await p.createPipeline({
        name: 'failing-item',
        failurePolicy: 'continue',
        steps: [
          { key: 'fan', task: picky, forEach: [0, 1, 2] },
          { key: 'after', task: echo, dependsOn: ['fan'] },
        ],
      });
      const [empty, regions, failing] = await Promise.all(
        (
          [
            [gated, undefined],
            [gated, { regions: ['eu', 'us'] }],
            [items, undefined],
          ] as const
        ).map(async ([pl, params]) => p.waitForPipelineRun((await p.startPipelineRun(pl.id, params)).id)),
      );

      expect([empty.status, empty.error]).toEqual(['succeeded', null]);
      expect(stepStates(empty)).toEqual({
        count: ['succeeded', 'ran'],
        gate: ['skipped', 'condition_false'],
        each: ['skipped', 'empty_list'],
        strict: ['skipped', 'trigger_rule'],
        lenient: ['succeeded', 'ran'],
      });
      expect(stepOf(empty, 'each').itemCount ?? 0).toBe(0);

      // The same list from a parameter given at start.
      expect([regions.status, stepOf(regions, 'each').status, stepOf(regions, 'each').itemCount]).toEqual(['succeeded', 'succeeded', 2]);
      const stdout = await Promise.all(stepOf(regions, 'each').items.map(async (i: any) => (await runOf(i.runId)).stdout));
      expect(stdout).toEqual(['item eu\n', 'item us\n']);

      expect(failing.status).toBe('failed');
      expect(stepStates(failing)).toEqual({ fan: ['failed', 'ran'], after: ['skipped', 'trigger_rule'] });
      expect(stepOf(failing, 'fan').items.map((i: any) => i.status)).toEqual(['succeeded', 'failed', 'succeeded']);
    },
    TIMEOUT_MS,
  );
});

describe('outputs between steps', () => {
  test(
    'an output and a parameter reach a downstream step; a missing output and one over the cap fail clearly',
    async () => {
      const extract = await p.createTask({
        name: 'extract',
        shell: { script: `printf '# how many rows\\n\\nrows=42\\n' >> "$TASK_OUTPUTS"` },
      });
      const secretive = await p.createTask({
        name: 'secretive',
        shell: {
          script: 'echo "token=$TOKEN" >> "$TASK_OUTPUTS"; echo "url=https://u:$TOKEN@example.test/" >> "$TASK_OUTPUTS"',
          secretEnv: { TOKEN: SECRET },
        },
      });
      const load = await p.createTask({
        name: 'load',
        shell: { script: 'echo "rows: $ROWS day: $DAY"; echo "loaded=$ROWS" >> "$TASK_OUTPUTS"' },
      });
      // 70 KiB in one `name=value` line: past the 64 KiB cap.
      const tooBig = await p.createTask({
        name: 'too-big',
        shell: { script: `printf 'big=' >> "$TASK_OUTPUTS"; head -c ${70 * 1024} /dev/zero | tr '\\0' x >> "$TASK_OUTPUTS"` },
      });
      const pipelineOf = (name: string, task: string, rowsExpr: string) =>
        p.createPipeline({
          name,
          parameters: [{ name: 'date', default: '2026-01-01' }],
          steps: [
            { key: 'extract', task },
            { key: 'load', task: load, dependsOn: ['extract'], overrides: { env: { ROWS: rowsExpr, DAY: '{{ params.date }}' } } },
          ],
        });
      const [good, missing, big, secret] = await Promise.all([
        pipelineOf('outputs', extract, '{{ steps.extract.outputs.rows }}'),
        pipelineOf('outputs-missing', extract, '{{ steps.extract.outputs.nothing_here }}'),
        pipelineOf('outputs-too-big', tooBig, '{{ steps.extract.outputs.big }}'),
        pipelineOf('outputs-secret', secretive, '{{ steps.extract.outputs.token }}'),
      ]);
      const [byDefault, overridden, missingRun, bigRun, secretRun] = await Promise.all(
        (
          [
            [good, undefined],
            [good, { date: '2026-12-02' }],
            [missing, undefined],
            [big, undefined],
            [secret, undefined],
          ] as const
        ).map(async ([pl, params]) => p.waitForPipelineRun((await p.startPipelineRun(pl.id, params)).id)),
      );

      expect([byDefault.status, byDefault.params]).toEqual(['succeeded', { date: '2026-01-01' }]);
      expect(stepOf(byDefault, 'extract').outputs).toEqual({ rows: '42' });
      expect(stepOf(byDefault, 'load').outputs).toEqual({ loaded: '42' });
      const loadRun = await runOf(stepOf(byDefault, 'load').runId);
      expect(loadRun.stdout).toBe('rows: 42 day: 2026-01-01\n');
      expect(loadRun.outputs).toEqual({ loaded: '42' });
      expect(loadRun).toMatchObject({ trigger: 'pipeline', pipelineRunId: byDefault.id, pipelineStepKey: 'load', itemIndex: null });

      expect([overridden.status, overridden.params]).toEqual(['succeeded', { date: '2026-12-02' }]);
      expect((await runOf(stepOf(overridden, 'load').runId)).stdout).toBe('rows: 42 day: 2026-12-02\n');

      expect(missingRun.status).toBe('failed');
      expect(stepStates(missingRun)).toEqual({ extract: ['succeeded', 'ran'], load: ['failed', 'prepare_failed'] });
      expect(stepOf(missingRun, 'load').error).toContain('nothing_here');
      expect(stepOf(missingRun, 'load').error).toContain('rows');
      expect(stepOf(missingRun, 'load').runId).toBeNull();

      expect(bigRun.status).toBe('failed');
      expect(stepStates(bigRun)).toEqual({ extract: ['failed', 'ran'], load: ['skipped', 'fail_fast'] });
      const bigExtract = await runOf(stepOf(bigRun, 'extract').runId);
      expect(bigExtract.status).toBe('failed');
      expect(bigExtract.error).toMatch(/outputs/i);
      // Not retryable: the same file would be written again.
      expect(bigExtract.attemptCount).toBe(1);
      expect(stepOf(bigRun, 'extract').outputs ?? null).toBeNull();

      // A secret of the task never leaves it as an output, neither whole nor inside a value.
      expect(secretRun.status).toBe('succeeded');
      const secretOutputs = stepOf(secretRun, 'extract').outputs;
      expect(secretOutputs.token).toBe('***');
      expect(JSON.stringify(secretOutputs)).not.toContain(SECRET);
      expect(JSON.stringify((await runOf(stepOf(secretRun, 'extract').runId)).outputs)).not.toContain(SECRET);
      expect((await runOf(stepOf(secretRun, 'load').runId)).stdout).toBe('rows: *** day: 2026-01-01\n');
    },
    TIMEOUT_MS,
  );
});

describe('HTTP steps', () => {
  test(
    "an HTTP step's status and JSON body are outputs; a whole template keeps its type in a downstream body",
    async () => {
      const received: unknown[] = [];
      http = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (req.url === '/source') {
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ rows: 7, tags: ['a', 'b'] }));
          } else if (req.url === '/text') {
            res.end('not json');
          } else {
            received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            res.statusCode = 201;
            res.end();
          }
        });
      });
      await new Promise<void>((resolve) => http?.listen(0, '127.0.0.1', resolve));
      const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      const get = (path: string) =>
        p.createTask({ name: `get${path.replace('/', '-')}`, executor: 'http', http: { method: 'GET', url: `${origin}${path}` } });
      const [source, text] = await Promise.all([get('/source'), get('/text')]);
      const sink = await p.createTask({ name: 'sink', executor: 'http', http: { method: 'POST', url: `${origin}/sink`, body: {} } });
      const status = await p.createTask({ name: 'status', shell: { script: 'echo "status $STATUS"' } });
      const pipeline = await p.createPipeline({
        name: 'http',
        steps: [
          { key: 'fetch', task: source },
          { key: 'text', task: text },
          {
            key: 'push',
            task: sink,
            dependsOn: ['fetch'],
            overrides: {
              body: {
                count: '{{ steps.fetch.outputs.body.rows }}',
                tags: '{{ steps.fetch.outputs.body.tags }}',
                note: 'rows={{ steps.fetch.outputs.body.rows }}',
              },
            },
          },
          { key: 'status', task: status, dependsOn: ['text'], overrides: { env: { STATUS: '{{ steps.text.outputs.status }}' } } },
        ],
      });
      const run = await p.waitForPipelineRun((await p.startPipelineRun(pipeline.id)).id);
      expect([run.status, run.error]).toEqual(['succeeded', null]);
      expect(stepOf(run, 'fetch').outputs).toEqual({ status: 200, body: { rows: 7, tags: ['a', 'b'] } });
      expect(stepOf(run, 'text').outputs).toEqual({ status: 200, body: null });
      expect(stepOf(run, 'push').outputs).toEqual({ status: 201, body: null });
      expect(received).toEqual([{ count: 7, tags: ['a', 'b'], note: 'rows=7' }]);
      expect((await runOf(stepOf(run, 'status').runId)).stdout).toBe('status 200\n');
    },
    TIMEOUT_MS,
  );
});

describe('fan-out', () => {
  test(
    'forEach over 50 items (a literal, and an upstream JSON list) keeps within maxParallelism 5; downstream sees every item output',
    async () => {
      const list = await p.createTask({ name: 'list', shell: { script: `printf '{"items": [%s]}' "$(seq -s, 0 49)" > "$TASK_OUTPUTS"` } });
      const item = await p.createTask({
        name: 'item',
        shell: {
          script: timed(
            [
              'sleep 0.3',
              'echo "item=$ITEM" >> "$TASK_OUTPUTS"',
              'echo "index=$ITEM_INDEX" >> "$TASK_OUTPUTS"',
              'echo "seen=$SEEN" >> "$TASK_OUTPUTS"',
              'echo "seen_index=$SEEN_INDEX" >> "$TASK_OUTPUTS"',
            ].join('\n'),
          ),
        },
      });
      const collect = await p.createTask({ name: 'collect', shell: { script: 'printf "%s" "$ALL"' } });
      const fanOverrides = { env: { SEEN: '{{ item }}', SEEN_INDEX: '{{ itemIndex }}' } };
      const literalItems = Array.from({ length: 50 }, (_, i) => `item-${i}`);
      const [literal, upstream] = await Promise.all([
        p.createPipeline({
          name: 'fan-literal',
          maxParallelism: 5,
          steps: [
            { key: 'fan', task: item, forEach: literalItems, overrides: fanOverrides },
            { key: 'collect', task: collect, dependsOn: ['fan'], overrides: { env: { ALL: '{{ steps.fan.outputs }}' } } },
          ],
        }),
        p.createPipeline({
          name: 'fan-upstream',
          maxParallelism: 5,
          steps: [
            { key: 'list', task: list },
            { key: 'fan', task: item, dependsOn: ['list'], forEach: '{{ steps.list.outputs.items }}', overrides: fanOverrides },
            { key: 'collect', task: collect, dependsOn: ['fan'], overrides: { env: { ALL: '{{ steps.fan.outputs }}' } } },
          ],
        }),
      ]);
      const runs = await Promise.all(
        [literal, upstream].map(async (pl) => p.waitForPipelineRun((await p.startPipelineRun(pl.id)).id, undefined, 150_000)),
      );

      for (const [run, items] of [
        [runs[0], literalItems],
        [runs[1], Array.from({ length: 50 }, (_, i) => String(i))],
      ] as const) {
        expect([run.status, run.error]).toEqual(['succeeded', null]);
        const fan = stepOf(run, 'fan');
        expect([fan.status, fan.reason, fan.itemCount, fan.runId]).toEqual(['succeeded', 'ran', 50, null]);
        expect(fan.items.map((i: any) => [i.itemIndex, i.status])).toEqual(items.map((_, i) => [i, 'succeeded']));
        expect(new Set(fan.items.map((i: any) => i.runId)).size).toBe(50);

        const outputs: any[] = fan.outputs;
        expect(outputs).toHaveLength(50);
        expect(outputs.map((o) => [o.item, o.index, o.seen, o.seen_index])).toEqual(items.map((it, i) => [it, String(i), it, String(i)]));
        const concurrent = maxConcurrent(outputs.map(intervalOf));
        console.log(`fan-out ${run.id}: at most ${concurrent} items ran at once (maxParallelism 5)`);
        expect(concurrent).toBeLessThanOrEqual(5);
        expect(concurrent).toBeGreaterThan(1);

        const collected = await runOf(stepOf(run, 'collect').runId);
        // The run's own stdout is the 4 KiB tail from history; the attempt's record holds the head of it.
        expect(JSON.parse(collected.attempts[collected.attempts.length - 1].stdout)).toEqual(outputs);
      }
      const itemRun = await runOf(stepOf(runs[0], 'fan').items[7].runId);
      expect(itemRun).toMatchObject({ trigger: 'pipeline', pipelineRunId: runs[0].id, pipelineStepKey: 'fan', itemIndex: 7 });
    },
    FAN_OUT_TIMEOUT_MS,
  );
});

describe('retry and cancel', () => {
  test(
    'retry re-runs only the failed branch and what depends on it; succeeded steps are reused with their runs and outputs',
    async () => {
      const token = await p.createTask({ name: 'token', shell: { script: 'echo "token=$(date +%s%N)" >> "$TASK_OUTPUTS"' } });
      const flaky = await p.createTask({ name: 'flaky', shell: { script: 'echo broken >&2; exit 1' } });
      const quick = await p.createTask({ name: 'quick', shell: { command: 'true' } });
      const join = await p.createTask({ name: 'join', shell: { script: 'echo "token: $TOKEN"' } });
      const pipeline = await p.createPipeline({
        name: 'retry',
        failurePolicy: 'continue',
        steps: [
          { key: 'ok', task: token },
          { key: 'ok_next', task: quick, dependsOn: ['ok'] },
          { key: 'flaky', task: flaky },
          { key: 'join', task: join, dependsOn: ['ok', 'flaky'], overrides: { env: { TOKEN: '{{ steps.ok.outputs.token }}' } } },
        ],
      });
      const first = await p.waitForPipelineRun((await p.startPipelineRun(pipeline.id)).id);
      expect(first.status).toBe('failed');
      expect(stepStates(first)).toEqual({
        ok: ['succeeded', 'ran'],
        ok_next: ['succeeded', 'ran'],
        flaky: ['failed', 'ran'],
        join: ['skipped', 'trigger_rule'],
      });

      // Tasks run at their current version on retry: fix the broken one in between.
      const fixed = await p.request('PATCH', `/v1/tasks/${flaky}`, { shell: { script: 'echo fixed' } });
      expect([fixed.status, fixed.body.error?.code]).toEqual([200, undefined]);

      const retried = await p.request('POST', `/v1/pipeline-runs/${first.id}/retry`);
      expect([retried.status, retried.body.error?.code]).toEqual([202, undefined]);
      expect(retried.body).toMatchObject({ trigger: 'retry', retryOfPipelineRunId: first.id, pipelineVersion: first.pipelineVersion });
      expect(retried.body.id).not.toBe(first.id);
      const second = await p.waitForPipelineRun(retried.body.id);
      expect([second.status, second.error]).toEqual(['succeeded', null]);
      expect(stepStates(second)).toEqual({
        ok: ['succeeded', 'reused'],
        ok_next: ['succeeded', 'reused'],
        flaky: ['succeeded', 'ran'],
        join: ['succeeded', 'ran'],
      });
      for (const key of ['ok', 'ok_next']) {
        const [was, now] = [stepOf(first, key), stepOf(second, key)];
        expect([now.reusedFromPipelineRunId, now.outputs]).toEqual([first.id, was.outputs]);
        // The run that ran it, the first pipeline run's, with its attempts.
        expect(now.runId).toBe(was.runId);
        expect(now.attempts).toBeGreaterThan(0);
      }
      expect(stepOf(second, 'flaky').runId).not.toBe(stepOf(first, 'flaky').runId);
      expect((await runOf(stepOf(second, 'flaky').runId)).stdout).toBe('fixed\n');
      expect((await runOf(stepOf(second, 'join').runId)).stdout).toBe(`token: ${stepOf(first, 'ok').outputs.token}\n`);
      // The reused step's task ran once, for the first pipeline run only.
      const tokenRuns = await p.request('GET', `/v1/runs?taskId=${token}`);
      expect(tokenRuns.body.items.map((r: any) => r.id)).toEqual([stepOf(first, 'ok').runId]);

      const nothing = await p.request('POST', `/v1/pipeline-runs/${second.id}/retry`);
      expect([nothing.status, nothing.body.error?.code]).toEqual([409, 'PIPELINE_RUN_NOTHING_TO_RETRY']);
    },
    TIMEOUT_MS,
  );

  test(
    'cancel stops the running step and its processes and cancels the steps not started',
    async () => {
      const { task: long, marker } = await longTask('long');
      const quick = await p.createTask({ name: 'quick', shell: { command: 'true' } });
      const pipeline = await p.createPipeline({
        name: 'cancel',
        steps: [
          { key: 'long', task: long },
          { key: 'after', task: quick, dependsOn: ['long'] },
          { key: 'always_after', task: quick, dependsOn: ['long'], triggerRule: 'always' },
        ],
      });
      const started = await p.startPipelineRun(pipeline.id);
      await waitForProcesses(started.id, 'long', marker, 2);

      const cancelled = await p.request('POST', `/v1/pipeline-runs/${started.id}/cancel`);
      expect([cancelled.status, cancelled.body.error?.code]).toEqual([202, undefined]);
      const run = await p.waitForPipelineRun(started.id, undefined, 30_000);
      expect(run.status).toBe('cancelled');
      expect(stepStates(run)).toEqual({
        long: ['cancelled', 'pipeline_cancelled'],
        after: ['cancelled', 'pipeline_cancelled'],
        always_after: ['cancelled', 'pipeline_cancelled'],
      });
      expect(processesMatching(marker)).toEqual([]);
      expect((await runOf(stepOf(run, 'long').runId)).status).toBe('cancelled');

      const again = await p.request('POST', `/v1/pipeline-runs/${started.id}/cancel`);
      expect([again.status, again.body.error?.code]).toEqual([409, 'PIPELINE_RUN_ALREADY_FINISHED']);
    },
    TIMEOUT_MS,
  );
});

describe('in Temporal', () => {
  test(
    'each step and item is a child workflow <pipeline run>.<step>[.<item>] carrying PipelineRunId; the history replays',
    async () => {
      const echo = await p.createTask({ name: 'echo', shell: { script: 'echo "item ${ITEM:-none}"' } });
      const pipeline = await p.createPipeline({
        name: 'temporal',
        steps: [
          { key: 'first', task: echo },
          { key: 'fan', task: echo, dependsOn: ['first'], forEach: ['x', 'y', 'z'] },
          { key: 'on_fail', task: echo, dependsOn: ['fan'], triggerRule: 'one_failed' },
          { key: 'last', task: echo, dependsOn: ['fan'] },
        ],
      });
      const run = await p.waitForPipelineRun((await p.startPipelineRun(pipeline.id)).id);
      expect([run.status, run.error]).toEqual(['succeeded', null]);
      expect(stepStates(run)).toEqual({
        first: ['succeeded', 'ran'],
        fan: ['succeeded', 'ran'],
        on_fail: ['skipped', 'trigger_rule'],
        last: ['succeeded', 'ran'],
      });
      expect(run.workflowId).toBe(`pipeline-run-${run.id}`);
      await client.workflow.getHandle(run.workflowId).result();

      const wf = run.workflowId;
      const expected = [wf, `${wf}.first`, `${wf}.fan.0`, `${wf}.fan.1`, `${wf}.fan.2`, `${wf}.last`].sort();
      const listed = async (): Promise<string[]> => {
        const ids: string[] = [];
        for await (const w of client.workflow.list({ query: `PipelineRunId = "${run.id}"` })) ids.push(w.workflowId);
        return ids.sort();
      };
      // Visibility on the dev server is eventually consistent.
      expect(await eventually(listed, (ids) => ids.length >= expected.length, 15_000, 250)).toEqual(expected);

      const fanItem = stepOf(run, 'fan').items[1];
      const child = await client.workflow.getHandle(`${wf}.fan.1`).describe();
      expect(child.status.name).toBe('COMPLETED');
      expect(child.parentExecution?.workflowId).toBe(wf);
      const sa = child.searchAttributes as Record<string, unknown[]>;
      expect(sa.PipelineRunId).toEqual([run.id]);
      expect(sa.TaskRunId).toEqual([fanItem.runId]);
      expect(sa.TaskId).toEqual([echo]);
      expect(sa.Trigger).toEqual(['pipeline']);
      expect((await runOf(fanItem.runId)).stdout).toBe('item y\n');

      await checkReplayAndRecord(stack.config.TEMPORAL_ADDRESS, wf, 'pipeline-run-fan-out-and-skip.json');
    },
    TIMEOUT_MS,
  );
});
