// Lints the OpenAPI document the build dumped (scripts/openapi-dump.mjs) with Redocly CLI and the rules in
// redocly.yaml. Part of `npm run lint`, which `npm test` runs after `npm run build`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const document = join(root, 'apps/api/dist/openapi.json');
if (!existsSync(document)) {
  console.error(`openapi lint: ${document} is missing; run \`npm run build\` first (it dumps the document).`);
  process.exit(1);
}
const result = spawnSync(
  join(root, 'node_modules/.bin/redocly'),
  ['lint', document, '--config', join(root, 'redocly.yaml'), '--format', 'json'],
  {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // No telemetry and no update check: the lint sends nothing anywhere.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  },
);
let report;
try {
  report = JSON.parse(result.stdout);
} catch {
  console.error(`openapi lint: redocly did not report (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  process.exit(1);
}
// A warning fails the lint as an error does; nothing is tolerated (no .redocly.lint-ignore.yaml).
for (const p of report.problems) {
  const where = p.location?.map((l) => l.pointer).join(', ') ?? '';
  console.error(`${p.severity} ${p.ruleId}: ${p.message} at ${where}`);
}
const { errors, warnings, ignored } = report.totals;
console.log(
  `openapi lint (redocly ${report.version}): ${errors} errors, ${warnings} warnings, ${ignored} ignored`,
);
process.exit(errors + warnings > 0 ? 1 : 0);
