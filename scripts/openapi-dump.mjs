// Writes the API's OpenAPI document to apps/api/dist/openapi.json at build time, for the linter and the
// generated client. Needs no database or Temporal server (see apps/api/src/openapi-document.ts).
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { createOpenApiDocument } = require(join(root, 'apps/api/dist/openapi-document.js'));
const document = await createOpenApiDocument();
const out = join(root, 'apps/api/dist/openapi.json');
await mkdir(dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(document, null, 2)}\n`);
const operations = Object.values(document.paths).flatMap((item) => Object.keys(item)).length;
console.log(`openapi document: ${out} (${operations} operations)`);
