# baton in a container.
#
#   docker build -t baton .
#   docker run --rm -p 8080:8080 baton                      # the demo config baked in
#   docker run --rm --network host -v "$PWD/baton.yaml:/etc/baton/baton.yaml:ro" baton
#
# BASE is any Node >= 20.18 image with npm and /bin/sh: node:20-slim by default.
# CI builds FROM a Node base imported from the host (scripts/docker/base-image.sh).
ARG BASE=node:20-slim

# ---- deps: the production dependencies alone, exactly as package-lock.json says
FROM ${BASE} AS deps
ENV npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` compiles src/, which is not here (no dependency has install scripts)
RUN npm ci --omit=dev --ignore-scripts

# ---- build: every dependency, then compile the TypeScript to dist/
FROM ${BASE} AS build
ENV npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, dist, the default config; runs as `node`
FROM ${BASE}
ENV NODE_ENV=production \
    BATON_ADMIN=http://127.0.0.1:9901
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY scripts/demo-app.mjs ./scripts/demo-app.mjs
COPY scripts/docker/baton /usr/local/bin/baton
COPY scripts/docker/baton.yaml /etc/baton/baton.yaml
# tini (Debian's) as PID 1: it forwards SIGTERM to baton's supervisor and reaps
# orphans (an app instance whose supervisor died). CI's base image brings its own.
RUN command -v tini >/dev/null || { apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*; }
# Everything above belongs to root and is read-only for the user baton runs as.
USER node
# 8080: the proxy listener of the default config; 9901: the admin API (loopback-only
# unless the config says otherwise, with a token).
EXPOSE 8080 9901
# The admin API's /healthz answers 200 while the proxy runs. BATON_ADMIN points at the
# admin listener: set it when admin.listen is not 127.0.0.1:9901.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const r=require('http').get(process.env.BATON_ADMIN+'/healthz',s=>process.exit(s.statusCode===200?0:1));r.on('error',()=>process.exit(1));r.setTimeout(2500,()=>{r.destroy();process.exit(1)})"]
# baton's supervisor handles SIGTERM itself (stop accepting, finish in flight, stop
# instances, exit 0); SIGUSR2 (`docker kill -s USR2`) or `docker exec ... baton upgrade`
# upgrades it in place (README "Upgrading baton").
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "node", "--max-semi-space-size=8", "/app/dist/cli/main.js"]
CMD ["start", "-c", "/etc/baton/baton.yaml"]
