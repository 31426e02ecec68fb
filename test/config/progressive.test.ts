import { describe, expect, it } from 'vitest'
import { processOf, runCases, valid, yaml, type Case } from './helpers.js'

// SPEC §9's keys: rollout.strategy, canary, blueGreen, maxDraining. Each bad
// value is reported with its line, column and key path like any other key.

const head = yaml`
  listen:
    - port: 8080
  pools:
    web:
      size: 4
      process: { command: node app.js, ports: 41000-41999 }
`

describe('progressive delivery config: good', () => {
  it('reads the SPEC §9 example, with percentages as fractions and pauses in ms', () => {
    const c = valid(head + '\n' + yaml`
          rollout:
            strategy: canary
            maxDraining: 2
            canary:
              steps:
                - { weight: 5, pause: 30s }
                - { weight: 25, pause: 1m }
                - { weight: 50, pause: manual }
              analysis:
                minRequests: 100
                maxErrorRate: 1%
                maxP99Ratio: 1.5
              header: X-Baton-Canary
            blueGreen:
              previewRoute: { host: preview.example.com }
              scaleDownDelay: 30s
    `.replace(/^/gm, '    '))
    const r = processOf(c.pools.web).rollout
    expect(r.strategy).toBe('canary')
    expect(r.maxDraining).toBe(2)
    expect(r.canary).toEqual({
      steps: [{ weight: 5, pause: 30_000 }, { weight: 25, pause: 60_000 }, { weight: 50, pause: 'manual' }],
      analysis: { minRequests: 100, maxErrorRate: 0.01, maxP99Ratio: 1.5 },
      header: 'x-baton-canary'
    })
    expect(r.blueGreen).toEqual({ previewRoute: { host: 'preview.example.com' }, scaleDownDelay: 30_000 })
  })

  it('defaults: rolling, no canary, a 30 s scaleDownDelay, maxDraining the pool size (100%)', () => {
    const r = processOf(valid(head).pools.web).rollout
    expect(r.strategy).toBe('rolling')
    expect(r.canary).toBeUndefined()
    expect(r.blueGreen).toEqual({ scaleDownDelay: 30_000 })
    expect(r.maxDraining).toBe('100%')
  })

  it('analysis limits are each optional; minRequests defaults to 0', () => {
    const c = valid(head + '    rollout: { strategy: canary, canary: { steps: [{ weight: 10, pause: 5s }] } }\n')
    expect(processOf(c.pools.web).rollout.canary?.analysis).toEqual({ minRequests: 0 })
  })
})

const bad: Case[] = [
  {
    name: 'strategy: canary without canary.steps',
    text: head + '    rollout: { strategy: canary }\n',
    errors: ['7:26 pools.web.rollout.canary: is required with strategy: canary']
  },
  {
    name: 'an unknown strategy',
    text: head + '    rollout: { strategy: linear }\n',
    errors: ['7:26 pools.web.rollout.strategy: expected rolling, canary or blueGreen']
  },
  {
    name: 'weights out of 0-100 and going down, a pause that is neither a duration nor manual',
    text: head + yaml`
          rollout:
            strategy: canary
            canary:
              steps:
                - { weight: 50, pause: 10s }
                - { weight: 20, pause: 10s }
                - { weight: 120, pause: soon }
                - { weight: -1, pause: 0s }
    `.replace(/^/gm, '    '),
    errors: [
      '12:23 pools.web.rollout.canary.steps.1.weight: weights must not go down from step to step (the one before has 50)',
      '13:23 pools.web.rollout.canary.steps.2.weight: must be 0-100',
      '13:35 pools.web.rollout.canary.steps.2.pause: "soon" is neither a duration (such as 30s) nor manual',
      '14:23 pools.web.rollout.canary.steps.3.weight: must be 0-100',
      '14:34 pools.web.rollout.canary.steps.3.pause: must be longer than 0 (or manual)'
    ]
  },
  {
    name: 'no steps, a bare error rate, a ratio of 0, a header that is no header name, an unknown key',
    text: head + yaml`
          rollout:
            canary:
              steps: []
              analysis: { maxErrorRate: 1, maxP99Ratio: 0, minSamples: 3 }
              header: "x canary"
    `.replace(/^/gm, '    '),
    errors: [
      '9:16 pools.web.rollout.canary.steps: needs at least one step',
      '10:35 pools.web.rollout.canary.analysis.maxErrorRate: a bare number is ambiguous: write 1%',
      '10:51 pools.web.rollout.canary.analysis.maxP99Ratio: must be greater than 0',
      '10:54 pools.web.rollout.canary.analysis.minSamples: unknown key',
      '11:17 pools.web.rollout.canary.header: expected a header name such as x-baton-canary'
    ]
  },
  {
    name: 'an error rate over 100%, a preview route that matches everything, a negative scaleDownDelay',
    text: head + yaml`
          rollout:
            canary: { steps: [{ weight: 5, pause: 1s }], analysis: { maxErrorRate: 150% } }
            blueGreen: { previewRoute: {}, scaleDownDelay: -5s }
    `.replace(/^/gm, '    '),
    errors: [
      '8:78 pools.web.rollout.canary.analysis.maxErrorRate: a percentage of at most 100%',
      '9:34 pools.web.rollout.blueGreen.previewRoute: needs a host or a pathPrefix',
      '9:54 pools.web.rollout.blueGreen.scaleDownDelay: "-5s" is not a duration'
    ]
  },
  {
    name: 'blue-green needs twice the size in ports; a canary its largest step',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 4
          process: { command: node app.js, ports: 41000-41006 }
          rollout: { strategy: blueGreen }
        api:
          size: 4
          process: { command: node app.js, ports: 42000-42005 }
          rollout: { strategy: canary, canary: { steps: [{ weight: 10, pause: 1s }, { weight: 60, pause: 1s }] } }
      routes:
        - { match: { pathPrefix: /api }, pool: api }
        - { match: { pathPrefix: / }, pool: web }
    `,
    errors: [
      '6:45 pools.web.process.ports: the range has 7 ports but size × 2 (strategy: blueGreen) needs 8',
      '10:45 pools.api.process.ports: the range has 6 ports but size + the largest canary step needs 7'
    ]
  },
  {
    name: 'a static pool is not rolled out: no canary for it',
    text: yaml`
      listen:
        - port: 8080
      pools:
        api:
          servers: [127.0.0.1:3000]
          rollout: { strategy: canary, canary: { steps: [{ weight: 10, pause: 1s }] } }
    `,
    errors: ['6:26 pools.api.rollout.strategy: canary is for managed pools']
  },
  {
    name: 'maxDraining is a count or a percentage',
    text: head + '    rollout: { maxDraining: lots }\n',
    errors: ['7:29 pools.web.rollout.maxDraining: expected a count or a percentage such as 25%']
  }
]

describe('progressive delivery config: bad', () => {
  runCases(bad)
})
