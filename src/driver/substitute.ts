/** Replaces `{port}` and `{version}` in a template string (README "Config reference"). */
export function substitute (template: string, vars: { port: number | string, version: string }): string {
  return template.replaceAll('{port}', String(vars.port)).replaceAll('{version}', vars.version)
}
