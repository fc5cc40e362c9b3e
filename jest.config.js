/**
 * Jest runs TypeScript through swc; the stack (Temporal, FerretDB, SMTP) is started by scripts/test.ts.
 * test/: suites against the real stack (HTTP, database, worker); workflows/*.test.ts: a flow's rules alone,
 * with its activities faked (test/support/workflow-env.ts).
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/workflows'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }] },
  testTimeout: 60000,
};
