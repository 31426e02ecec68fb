#!/usr/bin/env bash
# Builds a local Node base image, baton-node-base:20 by default, with `docker import`
# from this machine's own node: no registry needed. It stands in for node:20-slim
# in `docker build --build-arg BASE=baton-node-base:20 .` and holds what the
# Dockerfile uses: node, npm (for `npm ci`), /bin/sh and a few core utilities,
# the `node` user (uid 1000, as in the official image), CA certificates.
#
#   DOCKER_HOST=unix:///... scripts/docker/base-image.sh [IMAGE]
set -euo pipefail

IMAGE=${1:-baton-node-base:20}

say () { printf 'base-image.sh: %s\n' "$*" >&2; }
die () { say "error: $*"; exit 1; }

NODE=$(command -v node) || die "node is not on PATH"
NODE=$(readlink -f "$NODE")
NODE_VERSION=$("$NODE" -p 'process.versions.node')
NODE_MAJOR=${NODE_VERSION%%.*}
[[ "$NODE_MAJOR" -ge 20 ]] || die "node $NODE_VERSION is older than 20"

STAGE=$(mktemp -d /tmp/baton-node-base.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT

# A merged-/usr layout like Debian's: /bin, /lib, /lib64, /sbin are links into /usr.
mkdir -p "$STAGE/usr/bin" "$STAGE/usr/sbin" "$STAGE/usr/lib" "$STAGE/usr/local/bin"
for d in bin sbin lib lib64; do
  if [[ -L "/$d" ]]; then
    ln -s "$(readlink "/$d")" "$STAGE/$d"
    mkdir -p "$STAGE/$(readlink -f "/$d")"
  fi
done

# Copy a file to the same place in the stage, under its canonical directory,
# following symlinks in the name (so /lib/x/libc.so.6 lands in /usr/lib/x/libc.so.6).
put () {
  local src=$1 dir
  dir=$(readlink -f "$(dirname "$src")")
  mkdir -p "$STAGE$dir"
  cp -L --preserve=mode "$src" "$STAGE$dir/$(basename "$src")"
}

# A binary and every shared library it loads, plus the dynamic loader.
put_with_libs () {
  local bin=$1 lib
  put "$bin"
  while read -r lib; do
    if [[ -n "$lib" && -e "$lib" ]]; then put "$lib"; fi
  done < <(ldd "$bin" 2>/dev/null | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+/ { print $1 }')
}

put_with_libs "$NODE"
# Node's glibc resolves names with libnss (built into libc since 2.34; copied if separate).
for lib in /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libnss_dns.so.2 \
  /lib/aarch64-linux-gnu/libnss_files.so.2 /lib/aarch64-linux-gnu/libnss_dns.so.2; do
  if [[ -e "$lib" ]]; then put "$lib"; fi
done

# npm: its package directory and the npm/npx links beside node.
NPM=$(command -v npm) || die "npm is not on PATH"
NPM_CLI=$(readlink -f "$NPM")
NPM_DIR=$(dirname "$(dirname "$NPM_CLI")")
[[ -f "$NPM_DIR/package.json" ]] || die "cannot find npm's package directory (from $NPM_CLI)"
mkdir -p "$STAGE$(dirname "$NPM_DIR")"
cp -a "$NPM_DIR" "$STAGE$NPM_DIR"
NODE_BIN_DIR=$(dirname "$NODE")
for tool in npm npx; do
  cli="$NPM_DIR/bin/$tool-cli.js"
  if [[ -f "$cli" ]]; then ln -sf "$cli" "$STAGE$NODE_BIN_DIR/$tool"; fi
done
# node, npm, npx also on /usr/local/bin like the official image.
for tool in node npm npx; do
  if [[ "$NODE_BIN_DIR" != /usr/local/bin && -e "$STAGE$NODE_BIN_DIR/$tool" ]]; then
    ln -sf "$NODE_BIN_DIR/$tool" "$STAGE/usr/local/bin/$tool"
  fi
done
# npm's global config (this machine's registry and CA settings), if it has one.
NPMRC=$(npm config get globalconfig 2>/dev/null || true)
if [[ -n "$NPMRC" && -f "$NPMRC" ]]; then put "$NPMRC"; fi

# /bin/sh for RUN lines and npm scripts, /usr/bin/env for #!/usr/bin/env node, a few core utilities.
for tool in sh dash env cat ls mkdir rm rmdir cp mv ln chmod chown id sleep true false touch; do
  p=$(type -P "$tool" || true)
  if [[ -n "$p" ]]; then put_with_libs "$p"; fi
done
[[ -e "$STAGE/usr/bin/sh" || -e "$STAGE/bin/sh" ]] || die "no /bin/sh could be copied"
if [[ -L /bin/sh || -L /usr/bin/sh ]]; then
  # e.g. sh -> dash: keep the link rather than a copy under the wrong name
  target=$(readlink -f /bin/sh)
  put_with_libs "$target"
  ln -sf "$target" "$STAGE/usr/bin/sh"
fi

# tini (Debian's package on this machine): the image's PID 1 (the Dockerfile installs
# it with apt-get where the base has none).
TINI=$(type -P tini || true)
[[ -n "$TINI" ]] || die "tini is not installed here (apt-get install tini)"
put_with_libs "$(readlink -f "$TINI")"
if [[ "$(readlink -f "$TINI")" != /usr/bin/tini ]]; then ln -sf "$(readlink -f "$TINI")" "$STAGE/usr/bin/tini"; fi

# Certificates (npm reaches its registry over TLS through this machine's CA setup).
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then put /etc/ssl/certs/ca-certificates.crt; fi

# Users and the rest of /etc: root and node (1000:1000), as in the official image.
mkdir -p "$STAGE/etc" "$STAGE/tmp" "$STAGE/var/tmp" "$STAGE/root" "$STAGE/home/node" \
  "$STAGE/proc" "$STAGE/sys" "$STAGE/dev" "$STAGE/run"
cat >"$STAGE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000::/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$STAGE/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$STAGE/etc/nsswitch.conf"
if [[ -f /etc/os-release ]]; then put /etc/os-release; fi
chmod 1777 "$STAGE/tmp" "$STAGE/var/tmp"
chmod 700 "$STAGE/root"
chown 1000:1000 "$STAGE/home/node"

changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change "ENV NODE_VERSION=$NODE_VERSION"
  --change 'CMD ["node"]'
)
# This machine trusts an extra CA through NODE_EXTRA_CA_CERTS: so must the image's npm.
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then
  put "$NODE_EXTRA_CA_CERTS"
  changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$(readlink -f "$(dirname "$NODE_EXTRA_CA_CERTS")")/$(basename "$NODE_EXTRA_CA_CERTS")")
fi

say "importing $IMAGE: node $NODE_VERSION, npm $(npm --version), $(du -sh "$STAGE" | cut -f1) uncompressed"
tar -C "$STAGE" --numeric-owner -cf - . |
  docker import "${changes[@]}" --message "node $NODE_VERSION from the host, for baton's image tests" - "$IMAGE" >/dev/null

# It must run node and npm, as root and as the node user, with no network.
out=$(docker run --rm --network none "$IMAGE" sh -c 'node -p process.version && npm --version && id -u node') ||
  die "$IMAGE does not run node/npm"
say "$IMAGE ready: $(printf '%s' "$out" | tr '\n' ' ')"
