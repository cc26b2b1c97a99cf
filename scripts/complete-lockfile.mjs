// The npm registry reachable here does not serve every platform binary of
// packages such as @swc/core (macOS and Windows builds answer 404), so
// `npm install` leaves them out of package-lock.json and `npm ci` then refuses
// the lockfile as out of sync. This adds a stub entry for each missing
// optional platform package (version only, marked optional), which `npm ci`
// accepts and skips. Run after any `npm install` that changes the lockfile.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const added = [];
for (const [path, meta] of Object.entries(lock.packages)) {
  for (const [name, range] of Object.entries(meta.optionalDependencies ?? {})) {
    const base = path === '' ? '' : `${path}/`;
    const candidates = [`${base}node_modules/${name}`, `node_modules/${name}`];
    if (candidates.some((c) => lock.packages[c])) continue;
    lock.packages[`node_modules/${name}`] = { version: range.replace(/^[\^~=]/, ''), optional: true };
    added.push(name);
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added.length ? `added ${added.length} optional stubs: ${added.join(', ')}` : 'lockfile complete');
