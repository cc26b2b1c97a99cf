// Generates TypeScript types of the API from the document the build dumped (apps/api/dist/openapi.json) into
// test/generated/openapi.d.ts (not in git). The tests' typed client (openapi-fetch) uses them and
// `npm run lint` type-checks the tests against them, so a change of the contract that breaks a client breaks CI.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { COMMENT_HEADER, astToString } from 'openapi-typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'apps/api/dist/openapi.json');
const out = join(root, 'test/generated/openapi.d.ts');

const document = JSON.parse(await readFile(source, 'utf8'));
// The linter (npm run lint) reports the document's warnings; here only an unusable document fails.
// defaultNonNullable off: only `required` makes a field required. On (the default), a request field with a
// server-side default (shell.network) would be required of clients (openapi-typescript issues 1741, 1944).
const ast = await openapiTS(document, { silent: true, defaultNonNullable: false });
await mkdir(dirname(out), { recursive: true });
await writeFile(out, COMMENT_HEADER + astToString(ast));
console.log(`openapi client types: ${relative(root, out)} (from ${relative(root, source)})`);
