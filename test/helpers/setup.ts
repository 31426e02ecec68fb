import { afterAll } from 'vitest'
import { releasePortRanges } from './ports.js'

// Runs in every test file. vitest ends a file's worker process without its
// exit handlers, so the port ranges the file claimed are given back here,
// after its own afterAll hooks stopped everything that used them.
afterAll(releasePortRanges)
