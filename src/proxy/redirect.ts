/**
 * Where a redirect listener sends a request (README "TLS"): the host
 * (normalised: without the port it was asked on), the first TLS listener's
 * port (left out when it is 443), and the request target exactly as sent.
 */
export function httpsLocation (host: string, port: number, target: string): string {
  return `https://${host}${port === 443 ? '' : `:${port}`}${target}`
}
