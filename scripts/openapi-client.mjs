// Generates TypeScript types of the API from the document the build dumped (apps/api/dist/openapi.json) into
// test/generated/openapi.d.ts (not in git). The tests' typed client (openapi-fetch) uses them and
// `npm run lint` type-checks the tests against them, so a change of the contract that breaks a client breaks CI.
//
// Skips (exit 0, with a message) where nothing could use the types: a tree without the tests (the Docker image
// copies no test/) or without devDependencies (openapi-typescript is one). `--if-missing` (npm run lint)
// generates only when the file is missing, and says to run the build when the document is missing too.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'apps/api/dist/openapi.json');
const out = join(root, 'test/generated/openapi.d.ts');

if (process.argv.includes('--if-missing') && existsSync(out)) process.exit(0);
if (!existsSync(join(root, 'test/tsconfig.json'))) {
  console.log('openapi client types: skipped (no test/ in this tree)');
  process.exit(0);
}
if (!existsSync(source)) {
  console.error(
    `openapi client types: ${relative(root, source)} is missing; run \`npm run build\` first (it dumps the document and generates ${relative(root, out)}).`,
  );
  process.exit(1);
}
let openapi;
try {
  openapi = await import('openapi-typescript');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  console.log('openapi client types: skipped (openapi-typescript, a devDependency, is not installed)');
  process.exit(0);
}
const { default: openapiTS, COMMENT_HEADER, astToString } = openapi;

const document = JSON.parse(await readFile(source, 'utf8'));
// The linter (npm run lint) reports the document's warnings; here only an unusable document fails.
// defaultNonNullable off: only `required` makes a field required. On (the default), a request field with a
// server-side default (shell.network) would be required of clients (openapi-typescript issues 1741, 1944).
const ast = await openapiTS(document, { silent: true, defaultNonNullable: false });
await mkdir(dirname(out), { recursive: true });
await writeFile(out, COMMENT_HEADER + astToString(ast));
console.log(`openapi client types: ${relative(root, out)} (from ${relative(root, source)})`);
