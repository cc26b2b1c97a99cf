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
  ['lint', document, '--config', join(root, 'redocly.yaml'), '--format', 'stylish'],
  {
    cwd: root,
    stdio: 'inherit',
    // No telemetry and no update check: the lint sends nothing anywhere.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  },
);
process.exit(result.status ?? 1);
