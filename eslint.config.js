// ESLint flat config. Type-aware rules on TypeScript (STYLE.md "Tooling"): the ones that catch
// what tsc does not — a promise nobody awaits, a promise where a callback is expected, a
// switch that forgot a union member. Formatting belongs to prettier (.prettierrc.json).
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The few Node globals the plain-JS files (configs, deploy scripts) use; TypeScript files get
// theirs from @types/node through the type checker, so no-undef is off for them.
const nodeGlobals = Object.fromEntries(
  [
    'AbortController',
    'AbortSignal',
    'Buffer',
    'Headers',
    'Request',
    'Response',
    'TextDecoder',
    'TextEncoder',
    'URL',
    'URLSearchParams',
    'clearImmediate',
    'clearInterval',
    'clearTimeout',
    'console',
    'fetch',
    'performance',
    'process',
    'queueMicrotask',
    'setImmediate',
    'setInterval',
    'setTimeout',
    'structuredClone',
  ].map((name) => [name, 'readonly']),
);

export default defineConfig(
  {
    ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/results/', '.tmp/'],
  },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // A `default:` branch is a deliberate "everything else"; without one, every member of
      // a union must have its case.
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      // `_`-prefixed: required by a signature (Nest hooks, handlers) but unused on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    // The dashboard's browser module. Its globals are the DOM's, from its own tsconfig.json
    // (the type checker knows them; no-undef is off for TypeScript): what lint adds is what the
    // types cannot say. A browser resolves relative paths only, and the service serves this
    // directory alone, so any other import may bring types and nothing else; Node's globals do
    // not exist there.
    files: ['apps/analytics/src/dashboard/client/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./[a-z][a-z0-9-]*\\.js$)',
              allowTypeImports: true,
              message:
                'the dashboard module may import ./<file>.js of its own directory; anything else only with `import type`',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'require', 'global', '__dirname', '__filename'].map((name) => ({
          name,
          message: 'a Node global: the dashboard module runs in the browser',
        })),
      ],
    },
  },
  {
    // Plain JS is outside tsconfig.json, so the project service has no types for it.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: nodeGlobals },
  },
);
