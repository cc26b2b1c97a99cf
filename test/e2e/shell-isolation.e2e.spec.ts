/* A hostile tenant's shell task against the real stack: every attack of issue 9, run as tenant B while
 * tenant A's task runs beside it. Needs root, bubblewrap, slirp4netns, nftables and iproute2 (.ci/run
 * installs them). The egress test host lives in a network namespace this suite creates (veth pair on
 * 10.251.<n>.0/30); no traffic leaves this machine. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { randomBytes, randomInt } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { eventually } from '../support/eventually';
import { createTestNetns } from '../support/netns';
import type { TestNetns } from '../support/netns';
import { processesMatching } from '../support/processes';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let net: TestNetns | undefined;
/** The test host's namespace, this host's end of its veth and the test host's address (10.251.<n>.0/30). */
let netnsName = '';
let hostSide = '';
let testHost = '';
const BANNER = `hello-from-test-host-${randomBytes(4).toString('hex')}`;
let testServer: ChildProcess | undefined;
let testPort = 0;

let stack: TestStack;
let a: { tenantId: string; apiKey: string };
let b: { tenantId: string; apiKey: string };

/** Listening TCP ports of this host (IPv4 and IPv6), from /proc/net. */
function listeningPorts(): number[] {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') ports.add(parseInt(cols[1].split(':').pop() as string, 16));
    }
  }
  return [...ports].sort((x, y) => x - y);
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((x) => x && x.family === 'IPv4')
    .map((x) => (x as { address: string }).address);
}

beforeAll(async () => {
  // The test host: a namespace with a TCP server that sends a banner.
  net = createTestNetns('iso', 251);
  ({ name: netnsName, hostSide, peerSide: testHost } = net);
  testServer = spawn(
    'ip',
    [
      'netns',
      'exec',
      netnsName,
      process.execPath,
      '-e',
      `const s=require('net').createServer(c=>c.end(${JSON.stringify(BANNER + '\n')}));s.listen(0,'${testHost}',()=>console.log(s.address().port));setTimeout(()=>process.exit(0),600000).unref();`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  testPort = await new Promise<number>((resolve, reject) => {
    testServer?.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    testServer?.once('exit', (code) => reject(new Error(`test host server exited ${code}`)));
  });

  stack = await startStack('shell-isolation', { env: { HTTP_ALLOW_CIDRS: `${testHost}/32` } });
  a = await stack.createTenant(`iso-a-${randomBytes(3).toString('hex')}`);
  b = await stack.createTenant(`iso-b-${randomBytes(3).toString('hex')}`);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  testServer?.kill('SIGKILL');
  net?.remove();
});

async function createTask(tenant: { apiKey: string }, body: Record<string, unknown>): Promise<string> {
  const res = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: {
      executor: 'shell',
      retry: { maximumAttempts: 1 },
      timeoutSeconds: 60,
      ...body,
      name: `${body.name}-${randomBytes(3).toString('hex')}`,
    },
  });
  if (res.status !== 201) throw new Error(`create task: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

async function trigger(tenant: { apiKey: string }, taskId: string): Promise<string> {
  const res = await stack.request('POST', `/v1/tasks/${taskId}/runs`, { apiKey: tenant.apiKey });
  if (res.status !== 202) throw new Error(`trigger: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

async function runScript(tenant: { apiKey: string }, name: string, script: string, shell: Record<string, unknown> = {}): Promise<any> {
  const id = await createTask(tenant, { name, shell: { script, ...shell } });
  return stack.waitForRun(await trigger(tenant, id), undefined, 90_000, tenant.apiKey);
}

/** A bash one-liner that prints `<label>=open` or `<label>=closed` for a TCP connect within 2 s. */
const probe = (label: string, host: string, port: number): string =>
  `(timeout 2 bash -c 'exec 3<>/dev/tcp/${host}/${port}' 2>/dev/null && echo ${label}=open || echo ${label}=closed)`;

test('B cannot reach PostgreSQL, Temporal, the API or any listening port of the host, without network or with egress', async () => {
  const ports = listeningPorts();
  expect(ports.length).toBeGreaterThan(2); // PostgreSQL, Temporal and the API at least
  const pgPort = Number(new URL(process.env.TEST_DATABASE_URL as string).port || 5432);
  const temporalPort = Number((process.env.TEST_TEMPORAL_ADDRESS as string).split(':').pop());
  const apiPort = Number(new URL(stack.baseUrl).port);
  for (const p of [pgPort, temporalPort, apiPort]) expect(ports).toContain(p);
  const targets = ['127.0.0.1', '10.0.2.2', ...hostAddresses().filter((x) => x !== '127.0.0.1')];
  const lines = targets.flatMap((h) => ports.map((p) => probe(`${h}:${p}`, h, p)));
  const script = [
    ...lines,
    'ls -a /run /var/run 2>&1 | head -5',
    'for s in /var/run/postgresql/.s.PGSQL.5432 /run/postgresql/.s.PGSQL.5432 /tmp/.s.PGSQL.5432; do test -e $s && echo socket=present || echo socket=absent; done',
  ].join('\n');
  for (const network of ['none', 'egress']) {
    const run = await runScript(b, `scan-${network}`, script, { network, limits: { cpuSeconds: 600 } });
    expect(run.status).toBe('succeeded');
    const open = run.stdout.split('\n').filter((l: string) => l.endsWith('=open'));
    expect(open).toEqual([]);
    const closed = run.stdout.split('\n').filter((l: string) => l.endsWith('=closed'));
    expect(closed).toHaveLength(targets.length * ports.length);
    expect(run.stdout).not.toContain('socket=present');
    expect(run.attempts[0].isolation).toBe('sandbox');
  }
}, 240_000);

test("B cannot see, signal or read A's concurrent task: processes, environment, files; they run as different uids", async () => {
  const marker = `${600 + randomInt(1000)}.${randomInt(100000)}`;
  const secret = `canary-${randomBytes(8).toString('hex')}`;
  const aTask = await stack.request('POST', '/v1/tasks', {
    apiKey: a.apiKey,
    body: {
      name: `a-secret-${randomBytes(3).toString('hex')}`,
      executor: 'shell',
      shell: { script: `echo ${secret} > ./a-file; sleep ${marker}`, secretEnv: { A_SECRET: secret } },
      timeoutSeconds: 120,
      retry: { maximumAttempts: 1 },
    },
  });
  expect(aTask.status).toBe(201);
  const aRun = await trigger(a, aTask.body.id);
  const [aPid] = await eventually(
    () => processesMatching(`sleep ${marker}`),
    (p) => p.length > 0,
    30_000,
  );
  const aUid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${aPid}/status`, 'utf8'))?.[1]);
  try {
    const bMarker = `${700 + randomInt(1000)}.${randomInt(100000)}`;
    const run = await runScript(
      b,
      'spy',
      [
        `sleep ${bMarker} & SP=$!`,
        'echo uid=$(id -u)',
        'echo pids=$(ls /proc | grep -c "^[0-9]")',
        `grep -l ${secret} /proc/[0-9]*/environ 2>/dev/null | wc -l | sed 's/^/environ_hits=/'`,
        `(grep -rl ${secret} /tmp /work /etc /srv /home /root /var 2>/dev/null | wc -l) | sed 's/^/file_hits=/'`,
        `kill -0 ${aPid} 2>/dev/null && echo signal=delivered || echo signal=refused`,
        `cat /proc/${aPid}/environ 2>/dev/null | tr '\\0' '\\n' | grep -c A_SECRET | sed 's/^/direct_environ=/'`,
        `ls /proc/${aPid} >/dev/null 2>&1 && echo a_proc=visible || echo a_proc=invisible`,
        'kill $SP; true',
      ].join('\n'),
    );
    expect(run.status).toBe('succeeded');
    const bUid = Number(/uid=(\d+)/.exec(run.stdout)?.[1]);
    expect(bUid).toBeGreaterThanOrEqual(200000);
    expect(aUid).toBeGreaterThanOrEqual(200000);
    expect(bUid).not.toBe(aUid); // two concurrent runs never share a uid
    expect(Number(/pids=(\d+)/.exec(run.stdout)?.[1])).toBeLessThan(8); // its own few processes only
    expect(run.stdout).toContain('environ_hits=0');
    expect(run.stdout).toContain('file_hits=0');
    expect(run.stdout).toContain('signal=refused');
    expect(run.stdout).toContain('a_proc=invisible');
    expect(run.stdout).toContain('direct_environ=0');
    // A is untouched by all of it.
    expect(processesMatching(`sleep ${marker}`)).toContain(aPid);
  } finally {
    await stack.request('POST', `/v1/runs/${aRun}/cancel`, { apiKey: a.apiKey });
  }
  const cancelled = await stack.waitForRun(aRun, undefined, 60_000, a.apiKey);
  expect(cancelled.status).toBe('cancelled');
  await eventually(
    () => processesMatching(`sleep ${marker}`),
    (p) => p.length === 0,
    10_000,
  );
}, 180_000);

test("the task's environment reaches the task only, never bwrap's or prlimit's own (they run outside the sandbox)", async () => {
  const marker = `${900 + randomInt(1000)}.${randomInt(100000)}`;
  const canary = `env-canary-${randomBytes(6).toString('hex')}`;
  const id = await createTask(b, { name: 'env-route', shell: { script: `sleep ${marker}`, env: { LD_DEBUG: 'all', CANARY: canary } } });
  const runId = await trigger(b, id);
  // bwrap's own processes match first; the task's `sleep` starts only once the sandbox is set up (cgroup,
  // dead man's switch), so wait for it too.
  const comm = (pid: string): string => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return 'gone';
    }
  };
  const pids = await eventually(
    () => processesMatching(`sleep ${marker}`),
    (p) => p.length >= 2 && p.some((pid) => comm(pid) === 'sleep'),
    30_000,
  );
  const environs = pids.map((pid) => {
    try {
      return { comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), env: readFileSync(`/proc/${pid}/environ`, 'utf8') };
    } catch {
      return { comm: 'gone', env: '' };
    }
  });
  const outside = environs.filter((e) => e.comm === 'bwrap');
  expect(outside.length).toBeGreaterThan(0);
  for (const e of outside) expect(e.env).toBe(''); // bwrap outside the sandbox: empty environment
  expect(environs.some((e) => e.comm === 'sleep' && e.env.includes(`CANARY=${canary}`))).toBe(true);
  await stack.request('POST', `/v1/runs/${runId}/cancel`, { apiKey: b.apiKey });
  expect((await stack.waitForRun(runId, undefined, 60_000, b.apiKey)).status).toBe('cancelled');
});

test('setsid, setsid -f, double fork and nohup children are gone within 1 s of the attempt ending', async () => {
  const m = `${800 + randomInt(1000)}.${randomInt(100000)}`;
  const run = await runScript(
    b,
    'escape',
    [
      `setsid sleep ${m}1 >/dev/null 2>&1 &`,
      `setsid -f sleep ${m}2 >/dev/null 2>&1`,
      `( ( sleep ${m}3 >/dev/null 2>&1 & ) & )`,
      `nohup sleep ${m}4 >/dev/null 2>&1 &`,
      `sleep 0.3; echo started`,
    ].join('\n'),
  );
  expect(run.status).toBe('succeeded');
  expect(run.stdout).toContain('started');
  const left = await eventually(
    () => processesMatching(`sleep ${m}`),
    (p) => p.length === 0,
    1_000,
    50,
  );
  expect(left).toEqual([]);
}, 120_000);

test('a fork bomb and a memory hog end with the limit named while another tenant’s run succeeds', async () => {
  const bombTask = await createTask(b, {
    name: 'fork-bomb',
    shell: { script: 'bomb() { bomb | bomb & }; bomb; sleep 30', limits: { processes: 32 } },
    timeoutSeconds: 60,
  });
  const hogTask = await createTask(b, {
    name: 'memory-hog',
    shell: { script: 'x=a; while :; do x="$x$x"; done', limits: { memoryMb: 48 } },
    timeoutSeconds: 60,
  });
  const okTask = await createTask(a, { name: 'innocent', shell: { script: 'sleep 1; echo fine' } });
  const [bomb, hog, ok] = await Promise.all([trigger(b, bombTask), trigger(b, hogTask), trigger(a, okTask)]);
  const [bombRun, hogRun, okRun] = await Promise.all([
    stack.waitForRun(bomb, undefined, 90_000, b.apiKey),
    stack.waitForRun(hog, undefined, 90_000, b.apiKey),
    stack.waitForRun(ok, undefined, 90_000, a.apiKey),
  ]);
  expect(bombRun.status).toBe('failed');
  expect(bombRun.attempts[0].resourceLimit).toBe('processes');
  expect(bombRun.error).toContain('resource_limit: processes');
  expect(hogRun.status).toBe('failed');
  expect(hogRun.attempts[0].resourceLimit).toBe('memory');
  expect(hogRun.error).toContain('resource_limit: memory');
  expect(okRun.status).toBe('succeeded');
  expect(okRun.stdout).toBe('fine\n');
});

test('CPU time, file size and working-directory size end the attempt with the limit named', async () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['cpu', { script: 'while :; do :; done', limits: { cpuSeconds: 1 } }, 'cpu'],
    ['file-size', { script: 'head -c 5000000 /dev/zero > /tmp/big', limits: { fileSizeMb: 1 } }, 'file_size'],
    ['workdir', { script: 'head -c 50000000 /dev/zero > ./big; sleep 1', limits: { workdirMb: 8 } }, 'workdir_size'],
  ];
  const runs = await Promise.all(cases.map(([name, shell]) => runScript(b, name, shell.script as string, { limits: shell.limits })));
  runs.forEach((run, i) => {
    expect(run.status).toBe('failed');
    expect(run.attempts[0].resourceLimit).toBe(cases[i][2]);
    expect(run.error).toContain(`resource_limit: ${cases[i][2]}`);
  });
});

test('egress reaches the allowed test host but not the host, its loopback or other private addresses; none reaches nothing', async () => {
  const script = [
    `(timeout 3 bash -c 'exec 3<>/dev/tcp/${testHost}/${testPort}; head -1 <&3') 2>/dev/null || echo testhost=unreachable`,
    probe('hostveth', hostSide, testPort),
    probe('slirphost', '10.0.2.2', testPort),
    probe('metadata', '169.254.169.254', 80),
    probe('slirpdns', '10.0.2.3', 53),
  ].join('\n');
  const egress = await runScript(b, 'egress', script, { network: 'egress' });
  expect(egress.status).toBe('succeeded');
  expect(egress.stdout).toContain(BANNER);
  expect(egress.stdout).toContain('hostveth=closed');
  expect(egress.stdout).toContain('slirphost=closed');
  expect(egress.stdout).toContain('metadata=closed');
  expect(egress.stdout).toContain('slirpdns=closed'); // no DNS forwarder to the host's resolver
  const none = await runScript(b, 'no-network', script);
  expect(none.stdout).not.toContain(BANNER);
  expect(none.stdout).toContain('testhost=unreachable');
});

test('a read-only system, private /tmp and working directory; a working directory of its own choosing', async () => {
  const run = await runScript(
    b,
    'filesystem',
    [
      'touch /usr/probe 2>/dev/null && echo usr=writable || echo usr=read-only',
      'touch /probe 2>/dev/null && echo root=writable || echo root=read-only',
      'echo here > ./file && cat ./file && pwd',
      'echo t > /tmp/t && echo tmp=writable',
      'touch /dev/probe 2>/dev/null && echo dev=writable || echo dev=read-only',
      'head -c 20000000 /dev/zero > /dev/shm/big 2>/dev/null; echo shm_kib=$(du -k /dev/shm/big | cut -f1)',
      'ls /home /root /var /srv /opt /work/main 2>&1 | grep -c "No such file" | sed "s/^/missing=/"',
    ].join('\n'),
    { workingDirectory: '/srv/job', limits: { workdirMb: 4 } },
  );
  expect(run.status).toBe('succeeded');
  expect(run.stdout).toContain('usr=read-only');
  expect(run.stdout).toContain('root=read-only');
  expect(run.stdout).toContain('here\n/srv/job');
  expect(run.stdout).toContain('tmp=writable');
  expect(run.stdout).toContain('dev=read-only');
  expect(Number(/shm_kib=(\d+)/.exec(run.stdout)?.[1])).toBeLessThanOrEqual(4096); // /dev/shm capped like /tmp
  expect(run.stdout).toContain('missing=5'); // /home, /root, /var, /opt and /work/main; /srv holds the working directory
});

test('the tenant policy: egress forbidden and limit caps are refused at create with 422, nothing stored', async () => {
  const c = await stack.createTenant(`iso-c-${randomBytes(3).toString('hex')}`);
  const patch = await stack.request('PATCH', `/v1/tenants/${c.tenantId}`, {
    body: { shellPolicy: { allowEgress: false, maxLimits: { memoryMb: 128 } } },
  });
  expect(patch.status).toBe(200);
  expect(patch.body.shellPolicy).toEqual({ allowEgress: false, maxLimits: { memoryMb: 128 } });
  const egress = await stack.request('POST', '/v1/tasks', {
    apiKey: c.apiKey,
    body: { name: 'egress', executor: 'shell', shell: { command: 'true', network: 'egress' } },
  });
  expect(egress.status).toBe(422);
  expect(egress.body.error.code).toBe('TASK_EGRESS_FORBIDDEN');
  const big = await stack.request('POST', '/v1/tasks', {
    apiKey: c.apiKey,
    body: { name: 'big', executor: 'shell', shell: { command: 'true', limits: { memoryMb: 4096 } } },
  });
  expect(big.status).toBe(422);
  expect(big.body.error.code).toBe('TASK_LIMIT_ABOVE_TENANT_CAP');
  expect(big.body.error.details).toEqual([{ field: 'shell.limits.memoryMb', message: 'at most 128' }]);
  const aboveMax = await stack.request('POST', '/v1/tasks', {
    apiKey: c.apiKey,
    body: { name: 'above-max', executor: 'shell', shell: { command: 'true', limits: { processes: 60000 } } },
  });
  expect(aboveMax.status).toBe(422); // no tenant cap on processes, but the platform maximum
  expect(aboveMax.body.error.details).toEqual([{ field: 'shell.limits.processes', message: 'at most 4096' }]);
  const doubleSlash = await stack.request('POST', '/v1/tasks', {
    apiKey: c.apiKey,
    body: { name: 'double-slash', executor: 'shell', shell: { command: 'true', workingDirectory: '//tmp/x' } },
  });
  expect(doubleSlash.status).toBe(400);
  const sandboxField = await stack.request('POST', '/v1/tasks', {
    apiKey: c.apiKey,
    body: { name: 'old-sandbox', executor: 'shell', shell: { command: 'true', sandbox: true } },
  });
  expect(sandboxField.status).toBe(400);
  const badDir = await stack.request('POST', '/v1/tasks', {
    apiKey: c.apiKey,
    body: { name: 'bad-dir', executor: 'shell', shell: { command: 'true', workingDirectory: '/usr/local' } },
  });
  expect(badDir.status).toBe(400);
  const list = await stack.request('GET', '/v1/tasks', { apiKey: c.apiKey });
  expect(list.body.items).toEqual([]);

  // A task created before the policy tightened runs within the new cap.
  const d = await stack.createTenant(`iso-d-${randomBytes(3).toString('hex')}`);
  const tid = await createTask(d, {
    name: 'cap-later',
    shell: { script: 'cat /proc/self/limits | grep "Max open files"', limits: { openFiles: 4096 } },
  });
  await stack.request('PATCH', `/v1/tenants/${d.tenantId}`, { body: { shellPolicy: { maxLimits: { openFiles: 100 } } } });
  const capped = await stack.waitForRun(await trigger(d, tid), undefined, 60_000, d.apiKey);
  expect(capped.status).toBe('succeeded');
  expect(capped.stdout).toMatch(/Max open files\s+100\s+100/);

  // A schedule made before the next change fires within it too (its Temporal action is rewritten).
  const sched = await stack.request('POST', '/v1/schedules', {
    apiKey: d.apiKey,
    body: { name: `cap-${randomBytes(3).toString('hex')}`, taskId: tid, spec: { cron: ['0 0 1 1 *'], timezone: 'UTC' } },
  });
  expect(sched.status).toBe(201);
  const tighter = await stack.request('PATCH', `/v1/tenants/${d.tenantId}`, { body: { shellPolicy: { maxLimits: { openFiles: 50 } } } });
  expect(tighter.body.shellPolicy).toEqual({ allowEgress: true, maxLimits: { openFiles: 50 } });
  const fired = await stack.request('POST', `/v1/schedules/${sched.body.id}/trigger`, { apiKey: d.apiKey });
  expect(fired.status).toBeLessThan(300);
  const fires = await eventually(
    async () => (await stack.request('GET', `/v1/runs?taskId=${tid}&trigger=schedule`, { apiKey: d.apiKey })).body.items,
    (items: any[]) => items.length === 1,
    30_000,
  );
  const scheduled = await stack.waitForRun(fires[0].id, undefined, 60_000, d.apiKey);
  expect(scheduled.stdout).toMatch(/Max open files\s+50\s+50/);
  // PATCH merges: the egress flag set once stays when only caps change.
  await stack.request('PATCH', `/v1/tenants/${d.tenantId}`, { body: { shellPolicy: { allowEgress: false } } });
  const merged = await stack.request('PATCH', `/v1/tenants/${d.tenantId}`, { body: { shellPolicy: { maxLimits: { openFiles: 60 } } } });
  expect(merged.body.shellPolicy).toEqual({ allowEgress: false, maxLimits: { openFiles: 60 } });
  // A task created with egress before the ban is refused at trigger, nothing started.
  const e = await stack.createTenant(`iso-e-${randomBytes(3).toString('hex')}`);
  const eTask = await createTask(e, { name: 'egress-then-banned', shell: { command: 'true', network: 'egress' } });
  const eSched = await stack.request('POST', '/v1/schedules', {
    apiKey: e.apiKey,
    body: { name: `egress-${randomBytes(3).toString('hex')}`, taskId: eTask, spec: { cron: ['0 0 1 1 *'], timezone: 'UTC' } },
  });
  expect(eSched.status).toBe(201);
  await stack.request('PATCH', `/v1/tenants/${e.tenantId}`, { body: { shellPolicy: { allowEgress: false } } });
  // Its schedule is paused in Temporal, and firing it by hand is refused.
  const handle = new Client({ connection: await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS }) }).schedule.getHandle(
    `${stack.config.TASK_QUEUE_PREFIX}.schedule.${eSched.body.id}`,
  );
  const described = await handle.describe();
  expect(described.state.paused).toBe(true);
  expect(described.state.note).toBe('paused: network egress is forbidden for this tenant');
  const fireBanned = await stack.request('POST', `/v1/schedules/${eSched.body.id}/trigger`, { apiKey: e.apiKey });
  expect(fireBanned.status).toBe(422);
  expect(fireBanned.body.error.code).toBe('TASK_EGRESS_FORBIDDEN');
  const banned = await stack.request('POST', `/v1/tasks/${eTask}/runs`, { apiKey: e.apiKey });
  expect(banned.status).toBe(422);
  expect(banned.body.error.code).toBe('TASK_EGRESS_FORBIDDEN');
  expect((await stack.request('GET', `/v1/runs?taskId=${eTask}`, { apiKey: e.apiKey })).body.items).toEqual([]);
});

test('a worker that cannot isolate refuses to start and says why; SHELL_ISOLATION=none runs and records it', async () => {
  const refusing = stack.spawnApp('worker', { WORKER_QUEUES: 'shell', BWRAP_PATH: '/nonexistent/bwrap' });
  const code = await refusing.exited;
  expect(code).not.toBe(0);
  expect(refusing.output()).toContain('shell isolation is not available on this worker');
  expect(refusing.output()).toContain('SHELL_ISOLATION=none');

  const plain = await startStack('shell-isolation-none', { env: { SHELL_ISOLATION: 'none' } });
  try {
    const res = await plain.request('POST', '/v1/tasks', {
      body: { name: `plain-${randomBytes(3).toString('hex')}`, executor: 'shell', shell: { command: 'true' } },
    });
    const queued = await plain.request('POST', `/v1/tasks/${res.body.id}/runs`);
    const run = await plain.waitForRun(queued.body.id);
    expect(run.status).toBe('succeeded');
    expect(run.attempts[0].isolation).toBe('none');
  } finally {
    await plain.stop();
  }
});
