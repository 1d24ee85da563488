/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  // Octokit and its helpers ship only as ES modules; let swc turn them into CommonJS for jest.
  transformIgnorePatterns: ['/node_modules/(?!(@octokit|universal-user-agent|universal-github-app-jwt|toad-cache|before-after-hook|fast-content-type-parse|content-type|bottleneck|json-with-bigint)/)'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 120_000,
};
