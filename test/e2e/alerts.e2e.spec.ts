/* Alerts end to end, with real parts: the API in process, two worker processes (so rule state is shared through
 * PostgreSQL, not a process), webhook and Slack receivers on loopback, and a Mailpit SMTP server whose API the
 * test reads. The evaluator and dispatcher passes are run by hand (the stack turns their timers off), scoped to
 * the test's own tenant. */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AlertDispatcher } from '../../apps/api/src/alerts/alert-dispatcher';
import { AlertEvaluator } from '../../apps/api/src/alerts/alert-evaluator';
import { verifySignature } from '../../apps/api/src/alerts/alert-messages';
import { eventually } from '../support/eventually';
import { freePort } from '../support/ports';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';

const ROOT = join(__dirname, '..', '..');
const MAILPIT = ['mailpit', 'github.com/axllent/mailpit', 'v1.33.1'];

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

let stack: TestStack;
let workers: AppProcess[] = [];
let receiver: Server;
let origin = '';
const received: Received[] = [];
/** Answers to give, by path, before the default 200 (e.g. a 429 with Retry-After). */
const scripted = new Map<string, { status: number; headers?: Record<string, string> }[]>();
let mailpit: ChildProcess | undefined;
let mailpitOutput = '';
let mailpitApi = '';

function resolveMailpit(): string {
  const out = execFileSync('bash', [join(ROOT, 'scripts/go-tool-install.sh'), ...MAILPIT], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  return out.trim().split('\n').pop() as string;
}

beforeAll(async () => {
  const [smtpPort, httpPort] = [await freePort(), await freePort()];
  mailpit = spawn(resolveMailpit(), ['--smtp', `127.0.0.1:${smtpPort}`, '--listen', `127.0.0.1:${httpPort}`, '--disable-version-check'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  mailpit.stdout?.on('data', (c) => (mailpitOutput += c));
  mailpit.stderr?.on('data', (c) => (mailpitOutput += c));
  mailpitApi = `http://127.0.0.1:${httpPort}/api/v1`;
  await eventually(
    () => fetch(`${mailpitApi}/messages`).then((r) => r.ok, () => false),
    (up) => up || mailpit?.exitCode !== null,
    30_000,
  );
  if (mailpit.exitCode !== null) throw new Error(`Mailpit exited: ${mailpitOutput}`);

  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const path = req.url ?? '';
      received.push({ path, headers: req.headers, body, at: Date.now() });
      const next = scripted.get(path)?.shift();
      res.writeHead(next?.status ?? 200, next?.headers ?? {});
      res.end(next ? 'slow down' : 'ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  const env = { HTTP_ALLOW_CIDRS: '127.0.0.1/32', SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, SMTP_FROM: 'alerts@scheduler.test' };
  stack = await startStack('alerts', { env: { ...env, PUBLIC_API_URL: 'https://scheduler.example.com' }, workers: false });
  workers = [stack.spawnApp('worker'), stack.spawnApp('worker')];
}, 600_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
  mailpit?.kill('SIGTERM');
});

const evaluator = () => stack.app.get(AlertEvaluator);
const dispatcher = () => stack.app.get(AlertDispatcher);

interface Tenant {
  tenantId: string;
  apiKey: string;
}

async function tenant(): Promise<Tenant> {
  return stack.createTenant(`alerts-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 20 });
}

async function call(t: Tenant, method: string, path: string, body?: unknown): Promise<any> {
  const res = await stack.request(method, path, { apiKey: t.apiKey, body });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A task whose runs exit with $CODE (0 unless a run says otherwise), in one attempt. */
async function exitTask(t: Tenant, name: string): Promise<string> {
  const task = await call(t, 'POST', '/v1/tasks', {
    name,
    executor: 'shell',
    shell: { script: 'exit "${CODE:-0}"' },
    retry: { maximumAttempts: 1 },
  });
  return task.id;
}

async function runs(t: Tenant, taskId: string, codes: number[]): Promise<void> {
  for (const code of codes) {
    const run = await call(t, 'POST', `/v1/tasks/${taskId}/runs`, { env: { CODE: String(code) } });
    const done = await stack.waitForRun(run.id, undefined, 60_000, t.apiKey);
    expect(done.status).toBe(code === 0 ? 'succeeded' : 'failed');
  }
}

async function webhookChannel(t: Tenant, path: string): Promise<{ id: string; secret: string }> {
  return call(t, 'POST', '/v1/alert-channels', { name: `hook${path.replace(/[^a-z0-9]/gi, '-')}`, type: 'webhook', url: `${origin}${path}` });
}

const to = (path: string) => received.filter((r) => r.path === path);
const eventsAt = (path: string) => to(path).map((r) => JSON.parse(r.body).type as string);

/** Dispatch passes until nothing is left due (bounded). */
async function drain(t: Tenant): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const r = await dispatcher().dispatch({ tenantId: t.tenantId });
    if (r.sent + r.retried + r.failed === 0) return;
  }
}

test('N failures in a row open one alert, told once; M successes resolve it once; the webhook signature verifies', async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'export');
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  expect(channel.secret).toMatch(/^whsec_/);
  // The secret is shown once: never in a read.
  const read = await call(t, 'GET', `/v1/alert-channels/${channel.id}`);
  expect(JSON.stringify(read)).not.toContain(channel.secret);
  expect(JSON.stringify(await call(t, 'GET', '/v1/alert-channels'))).not.toContain(channel.secret);

  await call(t, 'POST', '/v1/alert-rules', { name: 'export-failing', kind: 'consecutive_failures', taskId, failures: 3, recoveries: 2, channelId: channel.id });
  await runs(t, taskId, [1, 1]);
  await drain(t);
  expect(to(path)).toHaveLength(0); // two failures: below N
  await runs(t, taskId, [1]);
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing']);
  await runs(t, taskId, [1, 1, 1, 1]); // still failing: the open alert is not told again
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing']);
  const firing = await call(t, 'GET', '/v1/alerts?state=firing');
  expect(firing.items).toHaveLength(1);
  expect(firing.items[0]).toMatchObject({ state: 'firing', subjectType: 'task', subjectId: taskId });

  await runs(t, taskId, [0]);
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing']); // one success: below M
  await runs(t, taskId, [0, 0, 0]);
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing', 'alert.resolved']);
  expect((await call(t, 'GET', '/v1/alerts?state=firing')).items).toHaveLength(0);

  // A new streak opens a new alert.
  await runs(t, taskId, [1, 1, 1]);
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing', 'alert.resolved', 'alert.firing']);
  expect((await call(t, 'GET', '/v1/alerts')).items).toHaveLength(2);

  // Each delivery is signed over its timestamp and body with the channel's secret; a receiver with another secret refuses it.
  for (const r of to(path)) {
    const header = String(r.headers['x-taskscheduler-signature']);
    expect(verifySignature(channel.secret, header, r.body)).toBe(true);
    expect(verifySignature(`${channel.secret}x`, header, r.body)).toBe(false);
    expect(verifySignature(channel.secret, header, r.body.replace('"id":"', '"id":"x'))).toBe(false);
    expect(r.headers['x-taskscheduler-event-id']).toBe(JSON.parse(r.body).id);
  }
  const first = JSON.parse(to(path)[0].body);
  expect(first).toMatchObject({ type: 'alert.firing', subject: { type: 'task', id: taskId, name: 'export' }, run: { status: 'failed' } });
  expect(first.links.run).toBe(`https://scheduler.example.com/v1/runs/${first.run.id}`);
}, 240_000);

test('fast failures on two worker processes at once still open exactly one alert and one notification', async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'burst');
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  await call(t, 'POST', '/v1/alert-rules', { name: 'burst-failing', kind: 'consecutive_failures', taskId, failures: 2, channelId: channel.id });
  const started = await Promise.all(Array.from({ length: 12 }, () => call(t, 'POST', `/v1/tasks/${taskId}/runs`, { env: { CODE: '3' } })));
  const done = await Promise.all(started.map((r) => stack.waitForRun(r.id, undefined, 90_000, t.apiKey)));
  expect(done.map((r) => r.status)).toEqual(Array(12).fill('failed'));
  // Both workers recorded runs (else this would not test two processes).
  const identities = await stack.db.query(
    `SELECT count(DISTINCT a.worker_identity)::int AS n FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE r.task_id = $1`,
    [taskId],
  );
  expect(identities[0].n).toBe(2);
  // Two dispatchers at once (as two API processes would): each notification goes out once.
  await Promise.all([dispatcher().dispatch({ tenantId: t.tenantId }), dispatcher().dispatch({ tenantId: t.tenantId })]);
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing']);
  const [counter] = await stack.db.query(`SELECT consecutive_failures FROM alert_rule_counters WHERE subject_id = $1`, [taskId]);
  expect(counter.consecutive_failures).toBe(12); // every run counted once
  expect((await call(t, 'GET', '/v1/alerts')).items).toHaveLength(1);
}, 240_000);

test('re-notified at most every R while firing; escalated after E unacknowledged; ack stops both', async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'nightly');
  const main = `/hook-${randomBytes(3).toString('hex')}`;
  const escalation = `/hook-${randomBytes(3).toString('hex')}`;
  const [ch, esc] = [await webhookChannel(t, main), await webhookChannel(t, escalation)];
  await call(t, 'POST', '/v1/alert-rules', {
    name: 'nightly-failing',
    kind: 'consecutive_failures',
    taskId,
    failures: 1,
    channelId: ch.id,
    escalationChannelId: esc.id,
    escalateAfterSeconds: 1800,
    renotifySeconds: 600,
  });
  await runs(t, taskId, [1]);
  await drain(t);
  expect(eventsAt(main)).toEqual(['alert.firing']);
  const [alert] = (await call(t, 'GET', '/v1/alerts?state=firing')).items;

  // Within R and E: nothing more.
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ renotified: 0, escalated: 0 });
  // R has passed since the last notification (the clock moved by backdating the row): told again, once.
  await stack.db.query(`UPDATE alerts SET last_notified_at = now() - interval '11 minutes' WHERE id = $1`, [alert.id]);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ renotified: 1, escalated: 0 });
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ renotified: 0, escalated: 0 });
  await drain(t);
  expect(eventsAt(main)).toEqual(['alert.firing', 'alert.renotify']);

  // E has passed since it opened, unacknowledged: escalated to the second channel, once.
  await stack.db.query(`UPDATE alerts SET created_at = now() - interval '31 minutes' WHERE id = $1`, [alert.id]);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ escalated: 1 });
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ escalated: 0 });
  await drain(t);
  expect(eventsAt(escalation)).toEqual(['alert.escalation']);
  // Once escalated, a re-notification goes to both.
  await stack.db.query(`UPDATE alerts SET last_notified_at = now() - interval '11 minutes' WHERE id = $1`, [alert.id]);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ renotified: 1 });
  await drain(t);
  expect(eventsAt(main)).toEqual(['alert.firing', 'alert.renotify', 'alert.renotify']);
  expect(eventsAt(escalation)).toEqual(['alert.escalation', 'alert.renotify']);

  // Acknowledged: no more re-notification or escalation, however long it fires.
  const acked = await call(t, 'POST', `/v1/alerts/${alert.id}/ack`);
  expect(acked).toMatchObject({ state: 'firing', ackedBy: expect.any(String) });
  expect(acked.ackedAt).not.toBeNull();
  await stack.db.query(`UPDATE alerts SET last_notified_at = now() - interval '5 hours' WHERE id = $1`, [alert.id]);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ renotified: 0, escalated: 0 });
  await drain(t);
  expect(to(main)).toHaveLength(3);
  expect(to(escalation)).toHaveLength(2);
  const detail = await call(t, 'GET', `/v1/alerts/${alert.id}`);
  expect(detail.notifications.map((n: { event: string; status: string }) => `${n.event}:${n.status}`).sort()).toEqual(
    ['escalation:sent', 'firing:sent', 'renotify:sent', 'renotify:sent', 'renotify:sent'].sort(),
  );
}, 240_000);

test('an escalation delay without an escalation channel cannot be asked for; unknown channels are refused', async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'x');
  const ch = await webhookChannel(t, '/unused');
  const bad = await stack.request('POST', '/v1/alert-rules', {
    apiKey: t.apiKey,
    body: { name: 'r', kind: 'consecutive_failures', taskId, failures: 1, channelId: ch.id, escalateAfterSeconds: 60 },
  });
  expect(bad.status).toBe(422);
  expect(bad.body.error.code).toBe('ALERT_RULE_INVALID');
  const other = await tenant();
  const foreign = await webhookChannel(other, '/foreign');
  const res = await stack.request('POST', '/v1/alert-rules', {
    apiKey: t.apiKey,
    body: { name: 'r', kind: 'consecutive_failures', taskId, failures: 1, channelId: foreign.id },
  });
  expect(res.status).toBe(404);
  expect(res.body.error.code).toBe('ALERT_CHANNEL_NOT_FOUND');
});

test("Slack: blocks with the run's links; a 429 is retried no sooner than its Retry-After", async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'report');
  const path = `/services/T0/B0/${randomBytes(6).toString('hex')}`;
  const channel = await call(t, 'POST', '/v1/alert-channels', { name: 'team-slack', type: 'slack', url: `${origin}${path}` });
  // The URL is the secret of a Slack webhook: shown masked.
  expect(channel.url).not.toContain(path.split('/').pop());
  await call(t, 'POST', '/v1/alert-rules', { name: 'report-failing', kind: 'consecutive_failures', taskId, failures: 1, channelId: channel.id });
  scripted.set(path, [{ status: 429, headers: { 'retry-after': '30' } }]);
  await runs(t, taskId, [1]);
  expect(await dispatcher().dispatch({ tenantId: t.tenantId })).toEqual({ sent: 0, retried: 1, failed: 0 });
  const [n] = await stack.db.query(
    `SELECT attempts, status, extract(epoch FROM next_attempt_at - now())::float AS wait FROM alert_notifications WHERE channel_id = $1`,
    [channel.id],
  );
  expect(n).toMatchObject({ attempts: 1, status: 'pending' });
  expect(n.wait).toBeGreaterThan(25);
  expect(n.wait).toBeLessThanOrEqual(30);
  // Not due yet: a pass sends nothing.
  expect(await dispatcher().dispatch({ tenantId: t.tenantId })).toEqual({ sent: 0, retried: 0, failed: 0 });
  expect(to(path)).toHaveLength(1);
  // When the wait is over (moved forward here), it goes out.
  await stack.db.query(`UPDATE alert_notifications SET next_attempt_at = now() WHERE channel_id = $1`, [channel.id]);
  expect(await dispatcher().dispatch({ tenantId: t.tenantId })).toEqual({ sent: 1, retried: 0, failed: 0 });
  const msg = JSON.parse(to(path)[1].body);
  expect(msg.text).toMatch(/^\[FIRING\] Task "report" failed 1 time in a row/);
  const facts = JSON.stringify(msg.blocks[1]);
  expect(facts).toContain('*Task*\\nreport');
  expect(facts).toContain('*Error*');
  const buttons = msg.blocks.find((b: { type: string }) => b.type === 'actions').elements.map((e: { url: string }) => e.url);
  expect(buttons[0]).toMatch(/^https:\/\/scheduler\.example\.com\/v1\/runs\/[0-9a-f-]{36}$/);
  expect(buttons[1]).toMatch(/run-[0-9a-f-]{36}/);
}, 120_000);

test('email: the alert arrives in Mailpit with the run link; a test-send reports how the channel answered', async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'backup');
  const rcpt = `oncall-${randomBytes(3).toString('hex')}@example.com`;
  const channel = await call(t, 'POST', '/v1/alert-channels', { name: 'oncall-mail', type: 'email', to: [rcpt] });
  expect(await call(t, 'POST', `/v1/alert-channels/${channel.id}/test`)).toMatchObject({ delivered: true, error: null });
  await call(t, 'POST', '/v1/alert-rules', { name: 'backup-failing', kind: 'consecutive_failures', taskId, failures: 1, channelId: channel.id });
  await runs(t, taskId, [2]);
  await drain(t);
  const search = async () =>
    (await (await fetch(`${mailpitApi}/search?query=${encodeURIComponent(`to:${rcpt}`)}`)).json()) as { messages: { ID: string; Subject: string }[] };
  const found = await eventually(search, (r) => r.messages.length >= 2, 20_000);
  const subjects = found.messages.map((m) => m.Subject).sort();
  expect(subjects).toEqual(['Test notification from Task Scheduler', '[FIRING] Task "backup" failed 1 time in a row']);
  const alertMail = found.messages.find((m) => m.Subject.startsWith('[FIRING]')) as { ID: string };
  const message = (await (await fetch(`${mailpitApi}/message/${alertMail.ID}`)).json()) as { Text: string; HTML: string; From: { Address: string } };
  expect(message.From.Address).toBe('alerts@scheduler.test');
  const [run] = (await call(t, 'GET', `/v1/runs?taskId=${taskId}`)).items;
  expect(message.Text).toContain(`https://scheduler.example.com/v1/runs/${run.id}`);
  expect(message.HTML).toContain(`href="https://scheduler.example.com/v1/runs/${run.id}"`);
}, 120_000);

test('runs waiting queued or running past a threshold open one alert per task, resolved when none is left', async () => {
  const t = await stack.createTenant(`alerts-slots-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 1 });
  const task = await call(t, 'POST', '/v1/tasks', { name: 'slow', executor: 'shell', shell: { script: 'sleep 60' }, retry: { maximumAttempts: 1 } });
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  await call(t, 'POST', '/v1/alert-rules', { name: 'stuck', kind: 'running_too_long', thresholdSeconds: 2, channelId: channel.id });
  await call(t, 'POST', '/v1/alert-rules', { name: 'waiting', kind: 'queued_too_long', taskId: task.id, thresholdSeconds: 2, channelId: channel.id });
  const first = await call(t, 'POST', `/v1/tasks/${task.id}/runs`);
  await stack.waitForRun(first.id, (r) => r.status === 'running', 60_000, t.apiKey);
  const second = await call(t, 'POST', `/v1/tasks/${task.id}/runs`); // waits for the tenant's one slot
  // Both thresholds pass (2 s); a pass opens both, a second pass changes nothing.
  const report = await eventually(
    () => evaluator().evaluate({ tenantId: t.tenantId }),
    (r) => (r?.opened ?? 0) > 0,
    30_000,
    500,
  );
  let opened = report?.opened ?? 0;
  if (opened < 2) opened += (await eventually(() => evaluator().evaluate({ tenantId: t.tenantId }), (r) => (r?.opened ?? 0) > 0, 30_000, 500))?.opened ?? 0;
  expect(opened).toBe(2);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ opened: 0, resolved: 0 });
  const firing = (await call(t, 'GET', '/v1/alerts?state=firing')).items;
  expect(firing.map((a: { summary: string }) => a.summary).sort()).toEqual([
    '1 run of task "slow" running for longer than 2 s',
    '1 run of task "slow" waiting to start for longer than 2 s',
  ]);
  // The waiting run is visible as such in the API: queued, not admitted, since when.
  expect(await call(t, 'GET', `/v1/runs/${second.id}`)).toMatchObject({ status: 'queued', admittedAt: null });
  await call(t, 'POST', `/v1/runs/${first.id}/cancel`);
  await call(t, 'POST', `/v1/runs/${second.id}/cancel`);
  await stack.waitForRun(first.id, undefined, 60_000, t.apiKey);
  await stack.waitForRun(second.id, undefined, 60_000, t.apiKey);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ opened: 0, resolved: 2 });
  await drain(t);
  expect(eventsAt(path).sort()).toEqual(['alert.firing', 'alert.firing', 'alert.resolved', 'alert.resolved']);
}, 180_000);

test('missed fires: a schedule whose fires are skipped (overlap) opens an alert after N in a row', async () => {
  const t = await tenant();
  const task = await call(t, 'POST', '/v1/tasks', { name: 'overlapping', executor: 'shell', shell: { script: 'sleep 30' }, retry: { maximumAttempts: 1 } });
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  const schedule = await call(t, 'POST', '/v1/schedules', {
    name: 'every-2s',
    taskId: task.id,
    spec: { intervals: [{ everySeconds: 2 }] },
    policies: { overlap: 'skip' },
  });
  await call(t, 'POST', '/v1/alert-rules', { name: 'missed', kind: 'missed_fire', scheduleId: schedule.id, failures: 2, channelId: channel.id });
  // The first fire runs for 30 s; the fires during it are skipped. Fires settle 10 s before they are judged.
  const report = await eventually(() => evaluator().evaluate({ tenantId: t.tenantId }), (r) => (r?.opened ?? 0) > 0 || (r?.errors.length ?? 0) > 0, 60_000, 2_000);
  expect(report).toMatchObject({ opened: 1, errors: [] });
  await call(t, 'DELETE', `/v1/schedules/${schedule.id}`);
  await drain(t);
  const [alertMsg] = to(path).map((r) => JSON.parse(r.body));
  expect(alertMsg).toMatchObject({ type: 'alert.firing', subject: { type: 'schedule', id: schedule.id }, rule: { kind: 'missed_fire' } });
  expect(alertMsg.alert.summary).toMatch(/^Schedule "every-2s" missed \d+ fires in a row \(last: overlap/);
  for (const run of (await call(t, 'GET', `/v1/runs?taskId=${task.id}`)).items) await call(t, 'POST', `/v1/runs/${run.id}/cancel`).catch(() => {});
}, 180_000);

test('private IP literals are refused at create for alert channels and HTTP tasks alike', async () => {
  const t = await tenant();
  for (const url of ['http://10.1.2.3/hook', 'http://169.254.169.254/latest/meta-data', 'http://[fd00::1]/x', 'http://192.168.0.10:8080/']) {
    const ch = await stack.request('POST', '/v1/alert-channels', { apiKey: t.apiKey, body: { name: `c-${randomBytes(2).toString('hex')}`, type: 'webhook', url } });
    expect([url, ch.status, ch.body.error?.code]).toEqual([url, 422, 'URL_ADDRESS_REFUSED']);
    const task = await stack.request('POST', '/v1/tasks', {
      apiKey: t.apiKey,
      body: { name: `h-${randomBytes(2).toString('hex')}`, executor: 'http', http: { method: 'GET', url } },
    });
    expect([url, task.status, task.body.error?.code]).toEqual([url, 422, 'URL_ADDRESS_REFUSED']);
  }
  // Nothing was written.
  expect((await call(t, 'GET', '/v1/alert-channels')).items).toHaveLength(0);
  expect((await call(t, 'GET', '/v1/tasks')).items).toHaveLength(0);
});

test('a receiver sees an alert in order: a resolution waits for the firing notification being retried', async () => {
  const t = await tenant();
  const taskId = await exitTask(t, 'flaky');
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  await call(t, 'POST', '/v1/alert-rules', { name: 'flaky-failing', kind: 'consecutive_failures', taskId, failures: 1, channelId: channel.id });
  scripted.set(path, [{ status: 503 }]);
  await runs(t, taskId, [1]);
  expect(await dispatcher().dispatch({ tenantId: t.tenantId })).toEqual({ sent: 0, retried: 1, failed: 0 });
  await runs(t, taskId, [0]); // resolves: its notification is queued behind the firing one
  expect(await dispatcher().dispatch({ tenantId: t.tenantId })).toEqual({ sent: 0, retried: 0, failed: 0 });
  await stack.db.query(`UPDATE alert_notifications SET next_attempt_at = now() WHERE channel_id = $1 AND status = 'pending'`, [channel.id]);
  await drain(t);
  expect(to(path).map((r) => `${JSON.parse(r.body).type}`)).toEqual(['alert.firing', 'alert.firing', 'alert.resolved']);
});

test('disabling a rule resolves its alert and tells the channel; a deleted task resolves its alert', async () => {
  const t = await tenant();
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  const [a, b] = [await exitTask(t, 'task-a'), await exitTask(t, 'task-b')];
  const ruleA = await call(t, 'POST', '/v1/alert-rules', {
    name: 'a-failing',
    kind: 'consecutive_failures',
    taskId: a,
    failures: 1,
    channelId: channel.id,
    renotifySeconds: 60,
  });
  await call(t, 'POST', '/v1/alert-rules', { name: 'b-failing', kind: 'consecutive_failures', taskId: b, failures: 1, channelId: channel.id });
  await runs(t, a, [1]);
  await runs(t, b, [1]);
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing', 'alert.firing']);
  // A re-notification due but not sent when the rule is disabled is dropped: it would say "still firing".
  await stack.db.query(`UPDATE alerts SET last_notified_at = now() - interval '2 minutes' WHERE rule_id = $1`, [ruleA.id]);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ renotified: 1 });
  await call(t, 'PATCH', `/v1/alert-rules/${ruleA.id}`, { enabled: false });
  await drain(t);
  const resolvedA = to(path).map((r) => JSON.parse(r.body)).filter((m) => m.type === 'alert.resolved');
  expect(resolvedA).toHaveLength(1);
  expect(resolvedA[0].alert.summary).toMatch(/^Alert rule "a-failing" was disabled by key:/);
  const [dropped] = await stack.db.query(`SELECT status FROM alert_notifications WHERE channel_id = $1 AND event = 'renotify'`, [channel.id]);
  expect(dropped.status).toBe('cancelled');

  await call(t, 'DELETE', `/v1/tasks/${b}`);
  expect(await evaluator().evaluate({ tenantId: t.tenantId })).toMatchObject({ resolved: 1 });
  await drain(t);
  expect(eventsAt(path)).toEqual(['alert.firing', 'alert.firing', 'alert.resolved', 'alert.resolved']);
  expect((await call(t, 'GET', '/v1/alerts?state=firing')).items).toHaveLength(0);
});

test('a test-send is sent once, by the request, never again by a dispatcher', async () => {
  const t = await tenant();
  const path = `/hook-${randomBytes(3).toString('hex')}`;
  const channel = await webhookChannel(t, path);
  expect(await call(t, 'POST', `/v1/alert-channels/${channel.id}/test`)).toMatchObject({ delivered: true, status: 200 });
  expect(await dispatcher().dispatch({ tenantId: t.tenantId })).toEqual({ sent: 0, retried: 0, failed: 0 });
  expect(eventsAt(path)).toEqual(['alert.test']);
});

test('channel URLs that are not plain http(s) URLs, or carry credentials, and floods are refused with a code', async () => {
  const t = await tenant();
  for (const url of ['https:///user:pass@example.com/x', 'https://user:pass@example.com/x', 'http://[::1/', 'https://hooks.slack.com:99999/services/T0/B0/SECRET']) {
    const res = await stack.request('POST', '/v1/alert-channels', { apiKey: t.apiKey, body: { name: `c-${randomBytes(2).toString('hex')}`, type: 'slack', url } });
    expect([url, res.status, res.body.error?.code]).toEqual([url, 422, 'ALERT_CHANNEL_INVALID']);
    expect(JSON.stringify(res.body)).not.toContain('SECRET');
  }
  const ftp = await stack.request('POST', '/v1/alert-channels', { apiKey: t.apiKey, body: { name: 'ftp', type: 'webhook', url: 'ftp://example.com/x' } });
  expect([ftp.status, ftp.body.error?.code]).toEqual([400, 'VALIDATION_FAILED']);
  expect((await call(t, 'GET', '/v1/alert-channels')).items).toHaveLength(0);
  const channel = await webhookChannel(t, '/flood');
  const taskId = await exitTask(t, 'flood');
  const res = await stack.request('POST', '/v1/alert-rules', {
    apiKey: t.apiKey,
    body: { name: 'flood', kind: 'consecutive_failures', taskId, channelId: channel.id, renotifySeconds: 1 },
  });
  expect([res.status, res.body.error?.message]).toEqual([400, 'renotifySeconds must be at least 60']);
});
