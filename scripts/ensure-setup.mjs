// Makes a fresh clone runnable: installs dependencies from the lockfile when
// they are missing or older than it, and finds or builds the Temporal CLI.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const marker = join(root, 'node_modules/.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  console.error('setup: installing dependencies (npm ci)');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const t = spawnSync('bash', [join(root, 'scripts/temporal-install.sh')], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
});
if (t.status !== 0) process.exit(t.status ?? 1);
console.error(`setup: Temporal CLI at ${t.stdout.trim().split('\n').pop()}`);
