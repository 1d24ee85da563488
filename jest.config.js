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
  // Every file starts its own Temporal server, forge and workers, and mostly waits on them and on git and
  // check commands: two files at a time keep two cores busy without starving either.
  maxWorkers: 2,
  // Temporal's native runtime and the workflow bundler can outlive the last test by a long time; every
  // test closes what it started, so nothing is lost by not waiting for them.
  forceExit: true,
};
