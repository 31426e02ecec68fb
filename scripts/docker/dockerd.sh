#!/usr/bin/env bash
# A private Docker daemon for CI and local image tests, apart from any system one.
#
#   scripts/docker/dockerd.sh start    install docker.io if dockerd is missing, start the
#                                      daemon, wait until it answers, print `export DOCKER_HOST=...`
#   scripts/docker/dockerd.sh stop     stop it (by its PID), unmount what it left, remove its data
#   scripts/docker/dockerd.sh status   exit 0 if it runs and answers, 1 if not
#   scripts/docker/dockerd.sh env      print `export DOCKER_HOST=...` (use: eval "$(... env)")
#
# Both start and stop are idempotent. Needs root (it installs packages and runs dockerd).
# The daemon has no bridge and touches no iptables rule: run containers with
# --network host (only 127.0.0.1 is ever a target here) or --network none.
#
# Settings (environment):
#   BATON_DOCKER_RUN     socket, pidfile, exec-root and log   (default /run/baton-ci)
#   BATON_DOCKER_DATA    data root: images, layers, containers (default /var/lib/baton-ci-docker)
#                        Two daemons run side by side when both of these differ (e.g.
#                        BATON_DOCKER_RUN=/run/baton-ci2 BATON_DOCKER_DATA=/var/lib/baton-ci-docker2):
#                        each has its own socket, pidfile, exec-root and containerd, and
#                        `stop` touches only the processes and mounts under its own directories.
#   BATON_DOCKER_STORAGE_DRIVER  force a storage driver (default: dockerd picks, overlay2 where it can)
#   BATON_DOCKER_ARGS    more dockerd arguments, split on spaces: e.g. a TLS listener on loopback,
#                        "-H tcp://127.0.0.1:23760 --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem"
#                        (the unix socket stays, and is what this script talks to)
#   BATON_DOCKER_TMPFS   size of a tmpfs mounted on the data root (default 8g; 0: use the disk).
#                        Faster builds, and `stop` frees it at once: deleting tens of thousands
#                        of layer files from a disk mounted with `discard` took close to a minute.
set -euo pipefail

RUN_DIR=${BATON_DOCKER_RUN:-/run/baton-ci}
DATA_DIR=${BATON_DOCKER_DATA:-/var/lib/baton-ci-docker}
SOCK="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/docker.pid"
EXEC_ROOT="$RUN_DIR/exec"
LOG="$RUN_DIR/dockerd.log"
HOST="unix://$SOCK"

say () { printf 'dockerd.sh: %s\n' "$*" >&2; }
die () { say "error: $*"; exit 1; }

# The CLI: /usr/local/bin/docker if the machine has one, else the docker.io package's.
docker_cli () { DOCKER_HOST="$HOST" docker "$@"; }

daemon_pid () {
  local pid args
  [[ -f "$PIDFILE" ]] || return 1
  pid=$(<"$PIDFILE")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # Alive, and really the dockerd that owns our pidfile (not a recycled PID).
  { mapfile -d '' -t args <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
  [[ " ${args[*]-} " == *" --pidfile $PIDFILE "* ]] || return 1
  printf '%s\n' "$pid"
}

answers () { timeout 10 env DOCKER_HOST="$HOST" docker version >/dev/null 2>&1; }

find_dockerd () {
  local p
  for p in "$(command -v dockerd 2>/dev/null || true)" /usr/sbin/dockerd /usr/bin/dockerd; do
    [[ -n "$p" && -x "$p" ]] && { printf '%s\n' "$p"; return 0; }
  done
  return 1
}

install_docker () {
  [[ $(id -u) -eq 0 ]] || die "dockerd is missing and installing docker.io needs root"
  say "dockerd not found: installing Debian's docker.io"
  # Keep the package's init scripts from starting a system daemon of their own.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  } || rc=$?
  if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
  [[ $rc -eq 0 ]] || die "apt-get install docker.io failed (exit $rc)"
  command -v docker >/dev/null || die "docker.io installed but no docker CLI on PATH"
}

start () {
  if daemon_pid >/dev/null && answers; then
    say "already running (pid $(daemon_pid)) on $SOCK"
    printf 'export DOCKER_HOST=%s\n' "$HOST"
    return 0
  fi
  # A daemon of ours that runs but does not answer, or leftovers of one that died.
  stop_daemon

  local dockerd
  if ! dockerd=$(find_dockerd); then
    install_docker
    dockerd=$(find_dockerd) || die "docker.io installed but dockerd not found"
  fi
  # containerd, runc and docker-init live in /usr/bin and /usr/sbin; make sure dockerd sees them.
  export PATH="$PATH:/usr/sbin:/usr/bin:/sbin:/bin"

  mkdir -p "$RUN_DIR" "$EXEC_ROOT" "$DATA_DIR"
  chmod 711 "$RUN_DIR"
  local tmpfs=${BATON_DOCKER_TMPFS:-8g}
  if [[ "$tmpfs" != 0 ]] && ! mountpoint -q "$DATA_DIR"; then
    if mount -t tmpfs -o "size=$tmpfs,mode=0711" baton-ci-docker "$DATA_DIR" 2>/dev/null; then
      say "data root on a tmpfs of $tmpfs"
    else
      say "could not mount a tmpfs on $DATA_DIR: keeping the data root on disk"
    fi
  fi
  local args=(
    --host "$HOST"
    --data-root "$DATA_DIR"
    --exec-root "$EXEC_ROOT"
    --pidfile "$PIDFILE"
    --bridge none
    --iptables=false
    --ip-masq=false
    --ip6tables=false
    --log-level warn
  )
  if [[ -n "${BATON_DOCKER_STORAGE_DRIVER:-}" ]]; then args+=(--storage-driver "$BATON_DOCKER_STORAGE_DRIVER"); fi
  if [[ -n "${BATON_DOCKER_ARGS:-}" ]]; then
    local extra
    read -r -a extra <<<"$BATON_DOCKER_ARGS"
    args+=("${extra[@]}")
  fi

  say "starting $dockerd on $SOCK (data in $DATA_DIR, log in $LOG)"
  # setsid: its own session, so a Ctrl-C or the end of the calling shell does not reach it.
  setsid "$dockerd" "${args[@]}" </dev/null >"$LOG" 2>&1 &
  local launched=$!

  local i
  for ((i = 0; i < 120; i++)); do
    if answers; then
      local driver
      driver=$(docker_cli info --format '{{.Driver}}' 2>/dev/null || echo '?')
      say "up after $((i / 2)).$((i % 2 * 5))s: pid $(daemon_pid || echo "$launched"), storage driver $driver, server $(docker_cli version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
      printf 'export DOCKER_HOST=%s\n' "$HOST"
      return 0
    fi
    if ! kill -0 "$launched" 2>/dev/null; then
      say "dockerd exited during start-up; last lines of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      cleanup_leftovers
      exit 1
    fi
    sleep 0.5
  done
  say "dockerd did not answer within 60s; last lines of $LOG:"
  tail -n 30 "$LOG" >&2 || true
  stop_daemon
  exit 1
}

# PIDs of processes of ours that outlive dockerd (containerd and its shims), found
# by our own exec-root in their command line: never by a process name.
our_leftover_pids () {
  local d args
  for d in /proc/[0-9]*; do
    # mapfile is a builtin: no fork per process (forks are slow on some machines).
    { mapfile -d '' -t args <"$d/cmdline"; } 2>/dev/null || continue
    [[ "${d#/proc/}" != "$$" && "${d#/proc/}" != "$BASHPID" ]] || continue
    if [[ " ${args[*]-} " == *"$EXEC_ROOT"* ]]; then printf '%s\n' "${d#/proc/}"; fi
  done
}

# Direct children of the given PIDs (read from /proc/N/stat: no fork per process).
children_of () {
  local d stat fields want=" $* "
  for d in /proc/[0-9]*; do
    { read -r stat <"$d/stat"; } 2>/dev/null || continue
    read -r -a fields <<<"${stat##*) }" # after the command name: state, ppid, ...
    if [[ "$want" == *" ${fields[1]-} "* ]]; then printf '%s\n' "${d#/proc/}"; fi
  done
}

cleanup_leftovers () {
  local pid pids inits
  pids=$(our_leftover_pids || true)
  if [[ -n "$pids" ]]; then
    # A container outlives a dockerd that was SIGKILLed: its shim keeps it running.
    # The shim's child is the container's PID 1; killing it ends the whole container
    # (its PID namespace), which killing the shim alone does not.
    # shellcheck disable=SC2086
    inits=$(children_of $pids || true)
    for pid in $inits; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $(our_leftover_pids || true); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  # Unmount whatever is still mounted under our directories, deepest first: the
  # directory itself or a path below it, never a sibling that merely shares the
  # prefix (a second daemon's /run/baton-ci2 beside /run/baton-ci).
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
  done < <(awk -v a="$DATA_DIR" -v b="$RUN_DIR" '$2 == a || $2 == b || index($2, a "/") == 1 || index($2, b "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

stop_daemon () {
  local pid
  if pid=$(daemon_pid); then
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "dockerd (pid $pid) still running after 30s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$PIDFILE"
  cleanup_leftovers
}

stop () {
  local t0=$SECONDS
  stop_daemon
  local t1=$SECONDS
  rm -rf "$DATA_DIR" "$RUN_DIR"
  say "stopped ($((t1 - t0))s); removed $DATA_DIR and $RUN_DIR ($((SECONDS - t1))s)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if pid=$(daemon_pid) && answers; then say "running (pid $pid) on $SOCK"; exit 0; fi
    say "not running"; exit 1 ;;
  env) printf 'export DOCKER_HOST=%s\n' "$HOST" ;;
  *) printf 'usage: %s start|stop|status|env\n' "$0" >&2; exit 2 ;;
esac
