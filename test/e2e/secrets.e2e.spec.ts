/* Task secrets: encrypted at rest and in workflow histories, given to the task, masked everywhere they could show. */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack('secrets');
});
afterAll(async () => stack?.stop());

test('a secret env value reaches the task, is stored only encrypted and shows as *** in output and API', async () => {
  const secret = `sekrit-${randomBytes(8).toString('hex')}`;
  const created = await stack.request('POST', '/v1/tasks', {
    body: {
      name: 'uses-a-secret',
      executor: 'shell',
      shell: {
        script: 'echo "token=$API_TOKEN"; echo "len=${#API_TOKEN}"; echo "$API_TOKEN" >&2; exit 3',
        secretEnv: { API_TOKEN: secret },
        env: { PLAIN: 'visible' },
      },
      retry: { maximumAttempts: 1 },
    },
  });
  expect(created.status).toBe(201);
  expect(created.body.shell.secretEnv).toEqual({ API_TOKEN: '***' });
  expect(created.body.shell.env).toEqual({ PLAIN: 'visible' });
  expect(JSON.stringify((await stack.request('GET', `/v1/tasks/${created.body.id}`)).body)).not.toContain(secret);

  const queued = await stack.request('POST', `/v1/tasks/${created.body.id}/runs`);
  const run = await stack.waitForRun(queued.body.id);
  expect(run.status).toBe('failed');
  // The task had the real value (its length), and every place it printed it shows ***.
  expect(run.stdout).toBe(`token=***\nlen=${secret.length}\n`);
  expect(run.stderr).toBe('***\n');
  expect(run.attempts[0].stdout).toBe(run.stdout);
  expect(JSON.stringify(run)).not.toContain(secret);

  const rows = await stack.db.query(
    `SELECT t.spec::text, t.secrets, r.stdout, r.stderr, r.error, a.stdout AS a_out, a.stderr AS a_err
       FROM tasks t JOIN runs r ON r.task_id = t.id JOIN run_attempts a ON a.run_id = r.id WHERE t.id = $1`,
    [created.body.id],
  );
  expect(rows).toHaveLength(1);
  expect(rows[0].secrets).toMatch(/^v1\./);
  expect(JSON.stringify(rows)).not.toContain(secret);

  const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  try {
    const history = await new Client({ connection }).workflow.getHandle(run.workflowId).fetchHistory();
    // Payloads are base64 in the JSON form of a history: search their decoded text too.
    const raw = JSON.stringify(history, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
    const decoded = [...raw.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
    const text = [raw, ...decoded].join('\n');
    expect(text).toContain('token=***'); // decoding works: the masked output is in the failure details
    expect(text).toMatch(/"secrets":"v1\./); // the sealed blob travels in the input, decrypted only by the executor
    expect(text).not.toContain(secret);
  } finally {
    await connection.close();
  }
});

test('without SECRETS_KEY the API refuses secrets with a clear error and stores nothing', async () => {
  const noKey = await startStack('no-secrets-key', { env: { SECRETS_KEY: '' }, workers: false });
  try {
    const res = await noKey.request('POST', '/v1/tasks', {
      body: { name: 'no-key-secret', executor: 'shell', shell: { command: 'true', secretEnv: { A: 'b' } } },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('SECRETS_NOT_CONFIGURED');
    const [{ n }] = await noKey.db.query(`SELECT count(*)::int AS n FROM tasks WHERE name = 'no-key-secret'`);
    expect(n).toBe(0);
  } finally {
    await noKey.stop();
  }
});

test('a worker with another SECRETS_KEY fails the attempt at once, recorded failed, and never runs the task', async () => {
  const other = await startStack('secrets-wrong-key', { workers: false });
  const worker = other.spawnApp('worker', { SECRETS_KEY: randomBytes(32).toString('hex') });
  try {
    const created = await other.request('POST', '/v1/tasks', {
      body: {
        name: 'secret-elsewhere',
        executor: 'shell',
        shell: { script: 'echo ran', secretEnv: { TOKEN: 'x-value' } },
        retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 },
      },
    });
    const queued = await other.request('POST', `/v1/tasks/${created.body.id}/runs`);
    const run = await other.waitForRun(queued.body.id, undefined, 60_000);
    expect(run).toMatchObject({ status: 'failed', attemptCount: 1, stdout: null });
    expect(run.error).toContain('SECRETS_KEY');
    expect(run.attempts).toHaveLength(1);
    expect(run.attempts[0]).toMatchObject({ status: 'failed', stdout: null });
    expect(run.attempts[0].error).toContain('SECRETS_KEY');
  } finally {
    await worker.stop();
    await other.stop();
  }
});
