import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The machine has two cores; interop tests spawn xmlsec1/xmllint processes.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
