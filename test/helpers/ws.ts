import WebSocket from 'ws'

/** An open WebSocket through baton to the demo app's echo, with what happened to it. */
export interface WsProbe { opened: number, echoed: number, closedAt: number | undefined, code: number | undefined, errors: string[], ws: WebSocket }

/** Opens `n` WebSockets to `url` (http:// → ws://) and resolves once all are open. */
export async function openWebSockets (url: string, n: number): Promise<WsProbe[]> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const ws = new WebSocket(url.replace('http', 'ws') + '/ws')
    const probe: WsProbe = { opened: 0, echoed: 0, closedAt: undefined, code: undefined, errors: [], ws }
    ws.on('message', (m) => { if (String(m) === 'ping') probe.echoed++ })
    ws.on('close', (code) => { probe.closedAt = Date.now(); probe.code = code })
    ws.on('error', (err) => probe.errors.push(err.message))
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    probe.opened = Date.now()
    return probe
  }))
}

/** Sends `ping` on every open probe every `everyMs`; returns the stop. */
export function pingAll (probes: WsProbe[], everyMs = 100): () => void {
  const t = setInterval(() => { for (const p of probes) if (p.closedAt === undefined && p.ws.readyState === WebSocket.OPEN) p.ws.send('ping') }, everyMs)
  return () => clearInterval(t)
}
