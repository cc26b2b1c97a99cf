import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  { ignores: ['**/dist/**', 'node_modules/**', '.data/**', 'coverage/**', 'test/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'separate-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests assert on parsed JSON bodies; typing every response shape adds noise, not safety.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // NestJS injects by the runtime class of constructor parameters, so those imports must stay values.
    files: ['apps/api/src/**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': 'off',
      // IsOptional lets null through every validator; DTOs say Optional() or Nullable() (common/validation.ts).
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'class-validator',
              importNames: ['IsOptional'],
              message: 'use Optional() or Nullable() from common/validation: IsOptional lets null through',
            },
          ],
        },
      ],
    },
  },
  {
    // Workflow code is replayed deterministically in a sandbox: no Node built-ins,
    // no frameworks, no decorators (one decorator makes every workflow task fail).
    files: ['workflows/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS.flatMap((m) => [m, `node:${m}`]).map((name) => ({
            name,
            message: 'Node built-ins are not allowed in workflow code',
          })),
          patterns: [
            { group: ['node:*'], message: 'Node built-ins are not allowed in workflow code' },
            {
              group: [
                '@nestjs/*',
                'typeorm',
                'typeorm/*',
                'class-validator',
                'class-transformer',
                'reflect-metadata',
                'pg',
                '@task-scheduler/db',
                '@task-scheduler/config',
                '@task-scheduler/core',
              ],
              message: 'workflow code imports only @temporalio/workflow and pure code',
            },
            {
              group: ['@temporalio/activity', '@temporalio/worker', '@temporalio/client'],
              message: 'workflow code imports only @temporalio/workflow',
            },
            {
              // The package's root also loads its worker and client halves; its workflow half is sandbox-safe.
              regex: '^@temporalio/interceptors-opentelemetry(?!/lib/workflow(/span-exporter)?$)',
              message:
                'workflow code imports only @temporalio/interceptors-opentelemetry/lib/workflow (and its span-exporter) of that package',
            },
            { group: ['@task-scheduler/activities'], allowTypeImports: true, message: 'import activities as types only' },
          ],
        },
      ],
      'no-restricted-syntax': ['error', { selector: 'Decorator', message: 'decorators are not allowed in workflow code' }],
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
        TextDecoder: 'readonly',
        exports: 'writable',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
