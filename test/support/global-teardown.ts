import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
/** What no log line of any process may hold: an API key, or a credential or task token not redacted. */
const LEAKS: [string, RegExp][] = [
  ['an API key', /tsch_[a-z0-9]{4,32}_[A-Za-z0-9]{16,128}/],
  ['a task token', /"taskToken":"(?!\[redacted\])/],
  ['an x-api-key header', /"x-api-key":"(?!\[redacted\])/],
  ['an authorization header', /"authorization":"(?!\[redacted\])/],
];

/** Reads the logs of every API and worker process the run spawned (test/support/stack.ts) for leaks. */
function leaksInAppLogs(): string[] {
  const dir = process.env.TEST_APP_LOG_DIR;
  if (!dir || !existsSync(dir)) return [];
  const found: string[] = [];
  for (const f of readdirSync(dir)) {
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const [what, re] of LEAKS) if (re.test(line)) found.push(`${f}:${i + 1}: ${what}`);
      });
  }
  return found;
}

export default async function globalTeardown(): Promise<void> {
  const leaks = leaksInAppLogs();
  const files = process.env.TEST_APP_LOG_DIR && existsSync(process.env.TEST_APP_LOG_DIR) ? readdirSync(process.env.TEST_APP_LOG_DIR).length : 0;
  process.stderr.write(`[global-teardown] read the logs of ${files} spawned API and worker processes: ${leaks.length} leaks\n`);
  for (const s of (globalThis.__TS_STOPPERS__ ?? []).reverse()) {
    try {
      await s.stop();
    } catch (err) {
      process.stderr.write(`[global-teardown] could not stop ${s.name}: ${(err as Error).message}\n`);
    }
  }
  if (leaks.length) throw new Error(`process logs of this test run hold secrets:\n  ${leaks.slice(0, 20).join('\n  ')}`);
}
