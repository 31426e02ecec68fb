import { request } from 'node:http'
import type { EventData } from './views.js'

export interface BatonEvent { at: number, type: string, data: EventData }

/** Subscribes to GET /v1/events and records every event with its arrival time. */
export function recordEvents (adminUrl: string): { events: BatonEvent[], ready: Promise<void>, close: () => void } {
  const events: BatonEvent[] = []
  let close = (): void => {}
  const ready = new Promise<void>((resolve, reject) => {
    const req = request(adminUrl + '/v1/events', res => {
      res.setEncoding('utf8')
      let buf = ''
      res.on('data', (chunk: string) => {
        if (buf === '' && chunk.startsWith(':')) resolve()
        buf += chunk
        let idx
        while ((idx = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, idx)
          buf = buf.slice(idx + 2)
          const type = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (type !== undefined && data !== undefined) events.push({ at: Date.now(), type, data: JSON.parse(data) as EventData })
        }
        resolve()
      })
      res.on('error', () => undefined)
    })
    req.on('error', reject)
    req.end()
    close = () => req.destroy()
  })
  return { events, ready, close: () => close() }
}
