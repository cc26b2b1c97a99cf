// `npm run bench:isolation`: what isolation adds to a shell attempt's start.
// Spawn → the command's first instruction: the command is `date +%s%N`, which
// prints its own clock as it starts; the worker's clock is read just before the
// executor spawns. Isolated (bubblewrap, uid lease, cgroup, rlimits) and
// SHELL_ISOLATION=none (spawn as nobody in a fresh directory) alternate, A B A B,
// BENCH_RUNS pairs (default 200) after a warm-up; medians and their difference.
// Also the whole attempt (spawn → result) and an egress attempt's start.
// Needs root and the isolation tools; no Temporal, no database.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { median } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { ShellExecutor, prepareIsolation } = require(join(root, 'activities/dist/index.js'));
const { SHELL_DEFAULT_LIMITS } = require(join(root, 'libs/core/dist/index.js'));

const RUNS = Number(process.env.BENCH_RUNS || 200);
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

const { isolation, cgroups } = await prepareIsolation({
  stateDir: '/run/task-scheduler-bench',
  uidRange: [300000, 309999],
  allowCidrs: [],
  defaultLimits: SHELL_DEFAULT_LIMITS,
});
const common = { path: '/usr/bin:/bin', outputCapBytes: 4096, killGraceMs: 1000, defaultLimits: SHELL_DEFAULT_LIMITS };
const isolated = new ShellExecutor({ ...common, isolation });
const plain = new ShellExecutor({ ...common, isolation: null, runAs: { uid: 65534, gid: 65534 } });

async function once(executor, network) {
  const t0 = nowNs();
  const r = await executor.run({ spec: { command: 'date', args: ['+%s%N'], ...(network ? { network } : {}) }, timeoutSeconds: 30 });
  const t1 = nowNs();
  if (r.outcome !== 'exited' || r.exitCode !== 0) throw new Error(`run failed: ${r.error ?? r.stderr.text}`);
  const started = BigInt(r.stdout.text.trim());
  return { start: Number(started - t0) / 1e6, total: Number(t1 - t0) / 1e6 };
}

for (let i = 0; i < 10; i++) {
  await once(plain);
  await once(isolated);
}
const res = { none: { start: [], total: [] }, sandbox: { start: [], total: [] }, egress: { start: [], total: [] } };
for (let i = 0; i < RUNS; i++) {
  for (const [name, ex] of i % 2
    ? [
        ['none', plain],
        ['sandbox', isolated],
      ]
    : [
        ['sandbox', isolated],
        ['none', plain],
      ]) {
    const r = await once(ex);
    res[name].start.push(r.start);
    res[name].total.push(r.total);
  }
}
for (let i = 0; i < Math.min(40, RUNS); i++) {
  const r = await once(isolated, 'egress');
  res.egress.start.push(r.start);
  res.egress.total.push(r.total);
}
const row = (name) => {
  const s = res[name];
  return `| ${name} | ${s.start.length} | ${median(s.start).toFixed(1)} | ${Math.min(...s.start).toFixed(1)} | ${Math.max(...s.start).toFixed(1)} | ${median(s.total).toFixed(1)} |`;
};
const bwrapVersion = execFileSync(isolation.bwrap, ['--version'], { encoding: 'utf8' }).trim();
console.log(
  `machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${bwrapVersion}, cgroups: ${cgroups}`,
);
console.log('| mode | runs | spawn → first instruction, median ms | min | max | spawn → result, median ms |');
console.log('| --- | --- | --- | --- | --- | --- |');
console.log(row('none'));
console.log(row('sandbox'));
console.log(row('egress'));
const added = median(res.sandbox.start) - median(res.none.start);
console.log(
  `isolation adds ${added.toFixed(1)} ms median to the start (${(median(res.sandbox.start) / median(res.none.start)).toFixed(2)}x) and ${(median(res.sandbox.total) - median(res.none.total)).toFixed(1)} ms to the whole attempt`,
);
setTimeout(() => process.exit(0), 2500); // let the last leases and cgroups be released
