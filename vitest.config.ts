import { defineConfig } from 'vitest/config';

// One runner for unit, integration and end-to-end tests. Numerical and e2e tests are slow on
// 2 cores, so timeouts are generous; nothing here asserts on wall time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/bench/**', 'node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
