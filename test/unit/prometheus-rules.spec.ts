/* The Prometheus and Grafana files shipped in deploy/ are valid: promtool (Debian's `prometheus` package, installed
 * by .ci/run) checks the example configuration, the alerting rules and the dashboard's queries, and runs the rules'
 * unit tests. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = join(__dirname, '../../deploy/prometheus');

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool could not run (${r.error.message}): install Debian's prometheus package`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the alerting rules are valid', () => {
  const r = promtool('check', 'rules', 'alerts.yml');
  expect(r).toMatchObject({ status: 0 });
  expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
});

test('the alerting rules fire as their unit tests expect', () => {
  expect(promtool('test', 'rules', 'alerts.test.yml')).toMatchObject({ status: 0 });
});

test('the example scrape configuration is valid and loads the rules', () => {
  const r = promtool('check', 'config', 'prometheus.yml');
  expect(r).toMatchObject({ status: 0 });
  expect(r.output).toMatch(/alerts\.yml/);
});

test('every query of the Grafana dashboard is valid PromQL', () => {
  const dashboard = JSON.parse(readFileSync(join(__dirname, '../../deploy/grafana/task-scheduler-dashboard.json'), 'utf8'));
  const exprs: string[] = dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr));
  expect(exprs.length).toBeGreaterThan(10);
  // promtool parses rule expressions: each query becomes a recording rule (Grafana's $__rate_interval as 5m).
  const rules = {
    groups: [
      { name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: e.replaceAll('$__rate_interval', '5m') })) },
    ],
  };
  const tmp = mkdtempSync(join(tmpdir(), 'dashboard-rules-'));
  try {
    // JSON is YAML: promtool reads it as a rules file.
    writeFileSync(join(tmp, 'rules.yml'), JSON.stringify(rules));
    const r = spawnSync('promtool', ['check', 'rules', join(tmp, 'rules.yml')], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: r.status, output: `${r.stdout}${r.stderr}` }).toMatchObject({ status: 0 });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
