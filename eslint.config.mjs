// Lint rules (npm run lint; a stage of npm test). Type-aware where it matters: a promise nobody awaits is an
// error (no-floating-promises), and workflow code may import neither Node built-ins nor I/O code (it must be
// deterministic and runs in Temporal's sandbox: I/O belongs in activities/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.data/**', 'bench-results/**', 'test-results/**', 'coverage/**', 'web/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `any` stays rare and visible, but SDK and driver types sometimes leave no other way
      '@typescript-eslint/no-explicit-any': 'off',
      // dynamic imports for optional heavy modules, and require() in the CommonJS bits
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    ignores: ['workflows/**/*.test.ts'], // the fast workflow tests run outside the sandbox (TestWorkflowEnvironment)
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^node:', message: 'Workflow code runs in a deterministic sandbox: no Node built-ins (do I/O in an activity).' },
            {
              regex: '^(fs|path|os|crypto|http|https|net|child_process|worker_threads|timers)$',
              message: 'Workflow code runs in a deterministic sandbox: no Node built-ins (do I/O in an activity).',
            },
            {
              regex: '^(mongoose|nodemailer|argon2|express|@temporalio/(client|worker|activity))$',
              message: 'I/O libraries belong in activities/ and domain/, not in workflow code.',
            },
            {
              regex: '^\\.\\./(activities|db|domain|api|lib)(/|$)',
              allowTypeImports: true,
              message: 'Workflow code may only import types from activities/, db/, domain/, api/ and lib/ (call activities through proxyActivities).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setTimeout: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
