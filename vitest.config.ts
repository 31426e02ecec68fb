import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real processes and put real load on 2 cores: running files
    // one at a time keeps timing bounds honest.
    fileParallelism: false,
    setupFiles: ['test/helpers/setup.ts'],
    reporters: ['default']
  }
})
