#!/usr/bin/env bash
# The image check CI runs: build the Dockerfile and run the image for real.
#
#   bash scripts/docker/image-test.sh
#
# 1. a private dockerd (scripts/docker/dockerd.sh; installs docker.io if needed)
# 2. a Node base image imported from this machine's node (no registry reachable here)
# 3. docker build --build-arg BASE=baton-node-base:20 -t baton:ci .   (npm ci over --network host)
# 4. the image: non-root user, HEALTHCHECK, `baton check` of the baked and a mounted config
# 5. run it with host networking and a static pool pointing at a tiny backend on 127.0.0.1:
#    proxy and admin /healthz answer from the host, the HEALTHCHECK goes healthy,
#    `docker stop` lets an in-flight request finish and baton exits 0; PID 1 is tini
# 6. run it as shipped (default config: the demo app as a managed process pool) with
#    --network none, get an answer through it from inside the container, and
#    upgrade baton in place (`docker exec ... baton upgrade`)
#    (BATON_IMAGE_TEST_DEMO=0 skips this step)
# 7. stop the containers, the backend and the daemon (if this script started it)
#
# Exits non-zero with a clear message on the first failure. Needs root.
# BATON_DOCKER_KEEP=1 leaves the daemon and the images in place afterwards.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE="$ROOT/scripts/docker"
IMAGE=${BATON_IMAGE:-baton:ci}
BASE_IMAGE=${BATON_BASE_IMAGE:-baton-node-base:20}
CTR="baton-image-test-$$"
DEMO_CTR="baton-image-test-demo-$$"
export DOCKER_BUILDKIT=0 # the legacy builder: no buildx plugin needed, --network host allowed

TMP=$(mktemp -d /tmp/baton-image-test.XXXXXX)
chmod 755 "$TMP"
BACKEND_PID=""
SLOW_PID=""
STARTED_DAEMON=0
FAILED=1
T_ALL=$(date +%s%N)
TIMES=()

say () { printf 'image-test: %s\n' "$*"; }
fail () {
  printf 'image-test: FAIL: %s\n' "$*" >&2
  exit 1
}

# step NAME COMMAND...: run a step (errexit stays on inside it) and keep its duration.
STEP=""
step () {
  local t0
  STEP=$1
  shift
  say "== $STEP"
  t0=$(date +%s%N)
  "$@"
  TIMES+=("$(printf '%-34s %6.1fs' "$STEP" "$(elapsed "$t0")")")
  STEP=""
}
elapsed () { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

cleanup () {
  local rc=$?
  set +e
  if [[ $rc -ne 0 && -n "$STEP" ]]; then
    printf 'image-test: FAIL in step "%s" (exit %s)\n' "$STEP" "$rc" >&2
  fi
  local c
  for c in "$CTR" "$DEMO_CTR"; do
    if [[ -n "${DOCKER_HOST:-}" ]] && docker container inspect "$c" >/dev/null 2>&1; then
      if [[ $FAILED -eq 1 ]]; then
        say "container $c logs (last 40 lines):"
        docker logs --tail 40 "$c" 2>&1 | sed 's/^/  | /'
        say "container state: $(docker inspect -f '{{json .State}}' "$c" 2>/dev/null)"
      fi
      docker rm -f "$c" >/dev/null 2>&1
    fi
  done
  if [[ -n "$SLOW_PID" ]]; then kill "$SLOW_PID" 2>/dev/null; fi
  if [[ -n "$BACKEND_PID" ]]; then kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; fi
  if [[ $STARTED_DAEMON -eq 1 && "${BATON_DOCKER_KEEP:-0}" != 1 ]]; then
    local t0
    t0=$(date +%s%N)
    bash "$HERE/dockerd.sh" stop
    TIMES+=("$(printf '%-34s %6.1fs' 'stop dockerd, remove its data' "$(elapsed "$t0")")")
  fi
  rm -rf "$TMP"
  if [[ ${#TIMES[@]} -gt 0 ]]; then
    say "timings:"
    printf '  %s\n' "${TIMES[@]}"
    say "$(printf '%-34s %6.1fs' total "$(elapsed "$T_ALL")")"
  fi
  if [[ $rc -eq 0 ]]; then say "PASS: the image builds, serves, reports healthy and stops gracefully"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || fail "needs root (it installs docker.io and runs dockerd)"
command -v node >/dev/null || fail "node is not on PATH"

# ---- helpers ---------------------------------------------------------------

# free_port: a TCP port that is free on 127.0.0.1 right now.
free_port () {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# get URL: prints the status line "STATUS" then the body; exit 1 if no answer.
get () {
  node --input-type=module -e '
    const ctl = AbortSignal.timeout(Number(process.argv[2] ?? 5000))
    try {
      const r = await fetch(process.argv[1], { signal: ctl })
      console.log(r.status)
      console.log(await r.text())
    } catch (e) { console.error(String(e.cause ?? e)); process.exit(1) }
  ' "$@"
}

# expect_get URL STATUS TEXT: the answer has that status and its body contains TEXT.
expect_get () {
  local url=$1 status=$2 text=$3 out
  out=$(get "$url") || fail "GET $url: no answer"
  [[ "$(head -n1 <<<"$out")" == "$status" ]] || fail "GET $url: expected $status, got: $out"
  [[ "$out" == *"$text"* ]] || fail "GET $url: expected the body to contain $text, got: $out"
  say "GET $url -> $status ($(tail -n +2 <<<"$out" | head -c 160 | tr '\n' ' '))"
}

wait_for () { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  fail "timed out after ${secs}s waiting for $what"
}

# in_demo URL: GET from inside the demo container (its own network namespace).
in_demo () {
  docker exec "$DEMO_CTR" node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(5000) })
      .then(async r => { console.log(r.status); console.log(await r.text()) })
      .catch(e => { console.error(String(e.cause ?? e)); process.exit(1) })
  ' "$1"
}
demo_answers () { [[ "$(in_demo "$1" 2>/dev/null)" == 200*'"app":"baton-demo"'* ]]; }

# ---- steps -----------------------------------------------------------------

start_daemon () {
  if bash "$HERE/dockerd.sh" status 2>/dev/null; then
    say "a dockerd of ours is already running: using it, and leaving it running"
  else
    STARTED_DAEMON=1
  fi
  eval "$(bash "$HERE/dockerd.sh" start)"
  export DOCKER_HOST
  say "DOCKER_HOST=$DOCKER_HOST"
}

build_base () { bash "$HERE/base-image.sh" "$BASE_IMAGE"; }

build_image () {
  # npm ci inside the build reaches the npm registry through the host's network.
  local try
  for try in 1 2; do
    if docker build --network host --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" . >"$TMP/build.log" 2>&1; then
      break
    fi
    tail -n 40 "$TMP/build.log" >&2
    # One more try only when npm could not reach its registry; anything else is a real failure.
    if [[ $try -eq 1 ]] && grep -qE 'ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|ECONNREFUSED|socket hang up|network (request|error)' "$TMP/build.log"; then
      say "docker build failed on a network error from npm: trying once more"
      continue
    fi
    fail "docker build failed (last lines above)"
  done
  grep -E '^(Step [0-9]+/[0-9]+ : (FROM|RUN)|added|Successfully)' "$TMP/build.log" | sed 's/^/  | /'
  say "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

inspect_image () {
  local user health entry out
  user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
  [[ -n "$user" && "$user" != root && "$user" != 0 && "$user" != 0:0 ]] || fail "the image runs as root (User=\"$user\")"
  health=$(docker image inspect -f '{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{end}}' "$IMAGE")
  [[ "$health" == *healthz* ]] || fail "the image has no HEALTHCHECK against /healthz ($health)"
  entry=$(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")
  [[ "$entry" == *'"start","-c","/etc/baton/baton.yaml"'* ]] || fail "the image does not run baton start -c /etc/baton/baton.yaml ($entry)"
  say "user $user, entrypoint+cmd $entry"
  # The baked default config is valid.
  out=$(docker run --rm --network none "$IMAGE" check -c /etc/baton/baton.yaml 2>&1) || fail "baton check of the image's default config: $out"
  [[ "$out" == ok ]] || fail "baton check of the image's default config printed: $out"
  say "baton check /etc/baton/baton.yaml (default config) -> ok"
  # No dev dependency or source made it into the runtime image.
  out=$(docker run --rm --network none --entrypoint node "$IMAGE" -e '
    const fs = require("fs")
    const bad = ["/app/node_modules/typescript", "/app/node_modules/vitest", "/app/src", "/app/test"].filter(p => fs.existsSync(p))
    if (bad.length) { console.log(bad.join(" ")); process.exit(1) }') || fail "the runtime image holds build-only files: $out"
}

start_backend () {
  node -e '
    const http = require("http")
    const s = http.createServer((req, res) => {
      const u = new URL(req.url, "http://x")
      const answer = () => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ backend: "image-test-backend", path: u.pathname, xff: req.headers["x-forwarded-for"] ?? null, host: req.headers.host }) + "\n")
      }
      if (u.pathname === "/slow") setTimeout(answer, Number(u.searchParams.get("ms") ?? 1000))
      else answer()
    })
    s.listen(0, "127.0.0.1", () => console.log(s.address().port))
    process.on("SIGTERM", () => process.exit(0))
  ' >"$TMP/backend.port" 2>"$TMP/backend.log" &
  BACKEND_PID=$!
  wait_for 10 "the backend to listen" test -s "$TMP/backend.port"
  BACKEND_PORT=$(head -n1 "$TMP/backend.port")
  say "backend on 127.0.0.1:$BACKEND_PORT (pid $BACKEND_PID)"
}

run_container () {
  PROXY_PORT=$(free_port)
  ADMIN_PORT=$(free_port)
  [[ "$PROXY_PORT" != "$ADMIN_PORT" ]] || ADMIN_PORT=$(free_port)
  cat >"$TMP/baton.yaml" <<EOF
listen:
  - port: $PROXY_PORT
    host: 127.0.0.1
admin:
  listen: 127.0.0.1:$ADMIN_PORT
pools:
  app:
    servers: [127.0.0.1:$BACKEND_PORT]
    readiness: { path: /, interval: 1s }
EOF
  chmod 644 "$TMP/baton.yaml"
  local out
  out=$(docker run --rm --network none -v "$TMP/baton.yaml:/etc/baton/baton.yaml:ro" "$IMAGE" check -c /etc/baton/baton.yaml 2>&1) ||
    fail "baton check of the test config: $out"
  # Host networking: the daemon has no bridge, and only 127.0.0.1 is ever a target.
  # BATON_ADMIN tells the HEALTHCHECK where this config's admin API listens.
  docker run -d --name "$CTR" --network host \
    -e BATON_ADMIN="http://127.0.0.1:$ADMIN_PORT" \
    -v "$TMP/baton.yaml:/etc/baton/baton.yaml:ro" \
    "$IMAGE" >/dev/null
  say "container $CTR: proxy on 127.0.0.1:$PROXY_PORT, admin on 127.0.0.1:$ADMIN_PORT"
  wait_for 30 "the admin API /healthz" get "http://127.0.0.1:$ADMIN_PORT/healthz"
  wait_for 30 "the proxy listener" get "http://127.0.0.1:$PROXY_PORT/"
}

check_serving () {
  expect_get "http://127.0.0.1:$PROXY_PORT/hello" 200 '"backend":"image-test-backend"'
  expect_get "http://127.0.0.1:$PROXY_PORT/hello" 200 '"xff":"127.0.0.1"'
  expect_get "http://127.0.0.1:$ADMIN_PORT/healthz" 200 '"status":"ok"'
  expect_get "http://127.0.0.1:$ADMIN_PORT/metrics" 200 'baton_requests_total'
  # The live page's files are in the image (the build copies them into dist).
  expect_get "http://127.0.0.1:$ADMIN_PORT/" 200 'src="/page/app.js"'
  expect_get "http://127.0.0.1:$ADMIN_PORT/page/app.js" 200 'streamEvents'
  local uid
  uid=$(docker exec "$CTR" node -p 'process.getuid()') || fail "docker exec into the container failed"
  [[ "$uid" != 0 ]] || fail "baton runs as root in the container"
  local out
  out=$(docker exec "$CTR" baton check -c /etc/baton/baton.yaml 2>&1) || fail "docker exec CONTAINER baton check: $out"
  say "baton runs as uid $uid; \`docker exec $CTR baton check\` -> $out"
  # tini is PID 1 and baton's supervisor its child, with a controller and a worker below.
  local pid1 procs
  pid1=$(docker exec "$CTR" cat /proc/1/comm) || fail "cannot read PID 1 in the container"
  [[ "$pid1" == tini ]] || fail "PID 1 in the container is \"$pid1\", not tini"
  procs=$(docker exec "$CTR" node -e 'fetch(process.env.BATON_ADMIN + "/v1/processes").then(r => r.json()).then(p => console.log(`supervisor ${p.supervisor.pid}, controllers ${p.controllers.length}, workers ${p.workers.length}`))') ||
    fail "GET /v1/processes in the container failed"
  [[ "$procs" == *"controllers 1, workers 1"* ]] || fail "unexpected processes: $procs"
  say "PID 1 is tini; $procs"
}

check_healthy () {
  local i status=""
  for ((i = 0; i < 90; i++)); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$CTR")
    [[ "$status" == healthy ]] && break
    [[ "$(docker inspect -f '{{.State.Running}}' "$CTR")" == true ]] || fail "the container stopped while waiting for healthy"
    sleep 0.5
  done
  [[ "$status" == healthy ]] || fail "HEALTHCHECK status is \"$status\" after 45s: $(docker inspect -f '{{json .State.Health}}' "$CTR")"
  say "HEALTHCHECK: $status ($(docker inspect -f '{{with index .State.Health.Log 0}}exit {{.ExitCode}}{{end}}' "$CTR"))"
}

check_graceful_stop () {
  # A request in flight when the stop begins must still be answered (G6).
  get "http://127.0.0.1:$PROXY_PORT/slow?ms=2000" 15000 >"$TMP/slow.out" 2>&1 &
  SLOW_PID=$!
  sleep 0.5
  local t0 code
  t0=$(date +%s%N)
  docker stop -t 30 "$CTR" >/dev/null
  say "docker stop took $(elapsed "$t0")s"
  code=$(docker inspect -f '{{.State.ExitCode}}' "$CTR")
  if ! wait "$SLOW_PID"; then
    SLOW_PID=""
    fail "the request in flight during docker stop got no answer: $(cat "$TMP/slow.out")"
  fi
  SLOW_PID=""
  [[ "$(head -n1 "$TMP/slow.out")" == 200 ]] || fail "the request in flight during docker stop got: $(cat "$TMP/slow.out")"
  say "request in flight during the stop -> 200"
  [[ "$code" == 0 ]] || fail "baton exited $code on docker stop (SIGTERM), expected 0"
  docker logs "$CTR" 2>&1 | grep -q '"baton stopped"' || fail "baton's log has no \"baton stopped\" line"
  say "baton exited 0 on SIGTERM and logged \"baton stopped\""
}

check_demo () {
  # As shipped: no mount, no host network. baton starts three demo-app instances,
  # opens 8080 once they are ready; nothing outside the container is reached.
  docker run -d --name "$DEMO_CTR" --network none "$IMAGE" >/dev/null
  wait_for 60 "the demo pool to answer on 8080 inside the container" demo_answers "http://127.0.0.1:8080/from-image-test"
  say "demo: $(in_demo "http://127.0.0.1:8080/from-image-test" | sed -n 2p | head -c 160)"
  local out code
  out=$(docker exec "$DEMO_CTR" baton status 2>&1) || fail "docker exec $DEMO_CTR baton status: $out"
  [[ "$out" == *serving* ]] || fail "baton status shows no serving instance: $out"
  say "demo: baton status ->"
  printf '%s\n' "$out" | sed 's/^/  | /'
  # An upgrade of baton in place (the same code): the instances stay, the generation grows.
  out=$(docker exec "$DEMO_CTR" baton upgrade 2>&1) || fail "docker exec $DEMO_CTR baton upgrade: $out"
  [[ "$out" == *"baton upgraded: generation 2"* ]] || fail "baton upgrade in the container printed: $out"
  say "demo: baton upgrade -> $(printf '%s' "$out" | tail -n1)"
  demo_answers "http://127.0.0.1:8080/after-upgrade" || fail "the demo pool does not answer after the upgrade"
  docker stop -t 30 "$DEMO_CTR" >/dev/null
  code=$(docker inspect -f '{{.State.ExitCode}}' "$DEMO_CTR")
  [[ "$code" == 0 ]] || fail "baton with the demo pool exited $code on docker stop, expected 0"
  say "demo: baton exited 0 on docker stop"
}

step "start dockerd" start_daemon
step "import the Node base image" build_base
step "docker build" build_image
step "inspect the image" inspect_image
step "start a backend on the host" start_backend
step "run the container" run_container
step "proxy, admin, non-root" check_serving
step "HEALTHCHECK goes healthy" check_healthy
step "docker stop: graceful, exit 0" check_graceful_stop
if [[ "${BATON_IMAGE_TEST_DEMO:-1}" != 0 ]]; then
  step "default config: the demo pool" check_demo
fi
FAILED=0
