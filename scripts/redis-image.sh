#!/usr/bin/env bash
# Build (or reuse) a minimal local Redis (or Valkey) image for the integration tests.
# Run with --help for details.
set -euo pipefail

# Bump when the image layout below changes, so existing images get rebuilt.
readonly RECIPE_VERSION="1"
readonly DEFAULT_REDIS_IMAGE="session-testkit/redis:local"
readonly DEFAULT_VALKEY_IMAGE="session-testkit/valkey:local"
readonly LABEL_VERSION="session-testkit.redis.server-version"
readonly LABEL_RECIPE="session-testkit.redis.recipe"
readonly CHECK_TIMEOUT_SECS=10

# Set by main() once the server is known.
IMAGE=""
SERVER_BIN=""

usage() {
    cat <<EOF
Usage: scripts/redis-image.sh [--server PROGRAM] [--force | --check | --help]

Builds a minimal Docker image containing Redis (or another server speaking
its protocol, such as Valkey) for the integration tests and prints its name
on the last line of stdout (progress goes to stderr).

No container registry is needed: the image is assembled FROM scratch (via
'docker import' of a root filesystem) from host binaries:
  * installs 'redis-server' and 'redis-tools' with apt-get if redis-server or
    redis-cli is missing from PATH (needs root or sudo); the packaged
    redis-server service is stopped/disabled so it does not hold port 6379.
    With --server only redis-cli is needed (package 'redis-tools');
  * copies the server (Debian's redis-server, or --server's program),
    Debian's redis-cli and every shared library they link (found with ldd,
    including the dynamic loader) into the image;
  * /usr/bin/redis-sentinel is a symlink to redis-server (sentinel mode);
  * minimal /etc/passwd, /etc/group, /etc/nsswitch.conf; writable /data
    (the WORKDIR) and /tmp (mode 1777); EXPOSE 6379.

Another server (--server PROGRAM, a path or a name on PATH, e.g. Valkey's
valkey-server from scripts/valkey.sh): the program is copied as
/usr/bin/NAME-server when its file is named so (e.g. valkey-server), else as
/usr/bin/redis-server, and /usr/bin/redis-server, redis-sentinel,
redis-check-aof, redis-check-rdb and NAME-sentinel, NAME-check-aof,
NAME-check-rdb are symlinks to it, so the contract below holds unchanged.
The server must choose its mode from argv[0] or '--sentinel' as Redis does
(Valkey does: it recognises both redis-sentinel and valkey-sentinel).
redis-cli stays Debian's (it speaks to Valkey, including '--cluster create').
The default image name follows the server's '--version' output:
${DEFAULT_VALKEY_IMAGE} for Valkey, else ${DEFAULT_REDIS_IMAGE};
REDIS_TEST_IMAGE overrides it in both cases. E.g.
  scripts/redis-image.sh --server "\$(scripts/valkey.sh | tail -n 1)"

Image contract (close to the official 'redis' image for test purposes):
  * no ENTRYPOINT; CMD ["redis-server", "--protected-mode", "no"].
    A container command replaces the whole argv, so callers passing their own
    arguments must start with the program, and must pass
    '--protected-mode no' themselves if clients connect from outside the
    container (Redis has no password by default, so protected mode would
    refuse non-loopback clients), e.g.
      docker run IMAGE redis-server --port 7000 --cluster-enabled yes --protected-mode no
  * sentinel: write a config file into /data (sentinel rewrites its config,
    so it must be writable) and run 'redis-sentinel /data/sentinel.conf'
    (equivalently 'redis-server /data/sentinel.conf --sentinel').
  * no shell in the image: 'sh -c' does not work; use redis-cli directly,
    e.g. 'docker exec C redis-cli ping'.

If an image with the chosen name already exists and is labelled with the same
'--version' output as the chosen server on the host (and the same recipe),
the build is skipped.

Options:
  --server PROGRAM  put PROGRAM in the image as the server instead of Debian's
                    redis-server (see above)
  --force           rebuild even if an up-to-date image exists
  --check           only run the self-check against the existing image
  --help            show this text

The self-check (run after every build, or alone with --check) starts a
throwaway container, waits up to ${CHECK_TIMEOUT_SECS}s for 'redis-cli -h <container ip> ping'
from the host to answer PONG, runs 'docker exec <c> redis-cli ping', checks
that 'docker exec <c> redis-server --version' matches the image's version
label, and removes the container (also on failure).

Environment:
  REDIS_TEST_IMAGE  image name (repository:tag); default: ${DEFAULT_REDIS_IMAGE}
                    (${DEFAULT_VALKEY_IMAGE} when the server is Valkey)
EOF
}

log() { printf 'redis-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
WORK_DIR=""
CHECK_CONTAINER=""
POLICY_RC_CREATED=""
cleanup() {
    local rc=$?
    if [[ -n "$CHECK_CONTAINER" ]]; then
        docker rm -f "$CHECK_CONTAINER" >/dev/null 2>&1 || true
    fi
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" ]]; then
        rm -rf "$WORK_DIR"
    fi
    if [[ -n "$POLICY_RC_CREATED" ]]; then
        as_root rm -f /usr/sbin/policy-rc.d || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# ---------------------------------------------------------------- install
# Debian's redis-cli, and redis-server unless --server names another server.
ensure_redis_installed() {
    local packages=(redis-tools)
    [[ -n "$SERVER_BIN" ]] || packages=(redis-server redis-tools)
    if command -v redis-cli >/dev/null 2>&1 &&
        { [[ -n "$SERVER_BIN" ]] || command -v redis-server >/dev/null 2>&1; }; then
        return
    fi
    command -v apt-get >/dev/null 2>&1 || die "redis-server/redis-cli not found and apt-get is unavailable"
    log "installing ${packages[*]} with apt-get"
    # Keep the package's service from starting during installation (standard
    # Debian mechanism); only if nobody else installed a policy already.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        POLICY_RC_CREATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${packages[@]}" >&2
    if [[ -n "$POLICY_RC_CREATED" ]]; then
        as_root rm -f /usr/sbin/policy-rc.d || true
        POLICY_RC_CREATED=""
    fi
    # In case the service was started anyway: stop and disable it (best effort).
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        as_root systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
    as_root service redis-server stop >/dev/null 2>&1 || true
    as_root update-rc.d redis-server disable >/dev/null 2>&1 || true
    [[ -n "$SERVER_BIN" ]] || command -v redis-server >/dev/null 2>&1 \
        || die "redis-server still not on PATH after install"
    command -v redis-cli >/dev/null 2>&1 || die "redis-cli still not on PATH after install"
}

# ---------------------------------------------------------------- server choice
resolve_server() { # $1 = --server argument (path or name on PATH); prints an absolute path
    local path
    if [[ "$1" == */* ]]; then
        path="$1"
    else
        path="$(command -v -- "$1" 2>/dev/null)" || die "--server $1: not found on PATH"
    fi
    [[ -f "$path" && -x "$path" ]] || die "--server $1: not an executable file"
    (cd "$(dirname "$path")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$path")")
}

server_path() { # the server to put in the image
    if [[ -n "$SERVER_BIN" ]]; then
        printf '%s\n' "$SERVER_BIN"
    else
        command -v redis-server
    fi
}

server_version() {
    local v
    v="$("$(server_path)" --version)" || die "$(server_path) --version failed"
    [[ -n "$v" ]] || die "$(server_path) --version printed nothing"
    printf '%s\n' "$v"
}

default_image() { # $1 = server version string
    if [[ "$1" == Valkey\ * ]]; then
        printf '%s\n' "$DEFAULT_VALKEY_IMAGE"
    else
        printf '%s\n' "$DEFAULT_REDIS_IMAGE"
    fi
}

# ---------------------------------------------------------------- image state
image_label() { # $1 = label key; prints value or nothing
    docker image inspect --format "{{ index .Config.Labels \"$1\" }}" "$IMAGE" 2>/dev/null || true
}

image_up_to_date() { # $1 = the chosen server's version string
    docker image inspect "$IMAGE" >/dev/null 2>&1 || return 1
    [[ "$(image_label "$LABEL_VERSION")" == "$1" ]] || return 1
    [[ "$(image_label "$LABEL_RECIPE")" == "$RECIPE_VERSION" ]] || return 1
}

# ---------------------------------------------------------------- build
copy_into_root() { # $1 = root dir, $2 = absolute path on host; copies file content (symlinks resolved)
    local dest="$1$2"
    mkdir -p "$(dirname "$dest")"
    cp -L "$2" "$dest"
}

copy_with_libs() { # $1 = root dir, $2 = binary path on host, $3 = path inside image
    local root="$1" bin="$2" target="$3" lib
    mkdir -p "$root$(dirname "$target")"
    cp -L "$bin" "$root$target"
    chmod 755 "$root$target"
    # ldd lines look like:  libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)
    #                       /lib64/ld-linux-x86-64.so.2 (0x...)
    #                       linux-vdso.so.1 (0x...)          <- virtual, skipped
    while read -r lib; do
        [[ -n "$lib" ]] || continue
        [[ -e "$root$lib" ]] || copy_into_root "$root" "$lib"
    done < <(ldd "$bin" | awk '
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\// { print $1 }')
}

build_image() { # $1 = the chosen server's version string
    local version="$1" server cli root lib name prefix link
    server="$(server_path)"
    cli="$(command -v redis-cli)"
    # The server's name in the image: its own when it is NAME-server (valkey-server), so
    # that NAME-sentinel etc. can point at it; redis-server (and friends) always exist.
    name="$(basename "$server")"
    [[ "$name" =~ ^[a-z][a-z0-9]*-server$ ]] || name="redis-server"
    prefix="${name%-server}"
    mkdir -p /tmp/redis-image-work
    WORK_DIR="$(mktemp -d /tmp/redis-image-work/build.XXXXXX)"
    root="$WORK_DIR/rootfs"
    mkdir -p "$root"

    log "assembling root filesystem from $server and $cli"
    copy_with_libs "$root" "$server" "/usr/bin/$name"
    copy_with_libs "$root" "$cli" /usr/bin/redis-cli
    # glibc dlopen()s libgcc_s for pthread_cancel/unwinding; include it if present.
    for lib in /lib/*-linux-gnu*/libgcc_s.so.1 /usr/lib/*-linux-gnu*/libgcc_s.so.1; do
        if [[ -e "$lib" ]]; then
            [[ -e "$root$lib" ]] || copy_into_root "$root" "$lib"
            break
        fi
    done
    # redis-server switches to sentinel / check modes based on argv[0] (Valkey's server
    # knows both the redis-* and the valkey-* names).
    [[ "$name" == redis-server ]] || ln -s "$name" "$root/usr/bin/redis-server"
    for link in {redis,"$prefix"}-{sentinel,check-aof,check-rdb}; do
        [[ -e "$root/usr/bin/$link" || -L "$root/usr/bin/$link" ]] || ln -s "$name" "$root/usr/bin/$link"
    done

    mkdir -p "$root/etc" "$root/data" "$root/tmp"
    chmod 1777 "$root/tmp"
    chmod 777 "$root/data"
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nredis:x:999:999:redis:/data:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nredis:x:999:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

    # Fail early if the binaries cannot run from the assembled root.
    if command -v chroot >/dev/null 2>&1 && [[ $EUID -eq 0 ]]; then
        chroot "$root" /usr/bin/redis-server --version >/dev/null \
            || die "redis-server does not run inside the assembled root filesystem"
        chroot "$root" /usr/bin/redis-cli --version >/dev/null \
            || die "redis-cli does not run inside the assembled root filesystem"
    fi

    local old_id new_id
    old_id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    log "importing image $IMAGE"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
        docker import \
            --change 'WORKDIR /data' \
            --change 'EXPOSE 6379' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["redis-server", "--protected-mode", "no"]' \
            --change "LABEL \"$LABEL_VERSION\"=\"$version\" \"$LABEL_RECIPE\"=\"$RECIPE_VERSION\"" \
            --message "session-testkit test image: $version" \
            - "$IMAGE" >/dev/null
    rm -rf "$WORK_DIR"
    WORK_DIR=""
    # Drop the previous (now untagged) image so rebuilds do not pile up; this
    # fails harmlessly if it is still tagged elsewhere or used by a container.
    new_id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
    if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi

    [[ "$(image_label "$LABEL_VERSION")" == "$version" ]] \
        || die "image $IMAGE was imported but its version label does not match"
    log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

# ---------------------------------------------------------------- self-check
self_check() {
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE does not exist; run without --check first"
    command -v redis-cli >/dev/null 2>&1 || die "redis-cli not on PATH (needed for the self-check)"
    CHECK_CONTAINER="redis-image-check-$$-$RANDOM$RANDOM"
    log "self-check: starting container $CHECK_CONTAINER"
    docker run -d --name "$CHECK_CONTAINER" "$IMAGE" >/dev/null

    local ip="" deadline=$((SECONDS + CHECK_TIMEOUT_SECS)) reply=""
    while ((SECONDS < deadline)); do
        ip="$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$CHECK_CONTAINER" | awk '{print $1}')"
        if [[ -n "$ip" ]]; then
            reply="$(timeout 2 redis-cli -h "$ip" -p 6379 ping 2>/dev/null || true)"
            [[ "$reply" == "PONG" ]] && break
        fi
        if [[ "$(docker inspect --format '{{.State.Running}}' "$CHECK_CONTAINER")" != "true" ]]; then
            docker logs "$CHECK_CONTAINER" >&2 || true
            die "self-check: container exited early"
        fi
        sleep 0.2
    done
    if [[ "$reply" != "PONG" ]]; then
        docker logs "$CHECK_CONTAINER" >&2 || true
        die "self-check: no PONG from redis at ${ip:-<no ip>}:6379 from the host within ${CHECK_TIMEOUT_SECS}s (last reply: '${reply}')"
    fi
    log "self-check: host -> $ip:6379 ping: PONG"

    reply="$(docker exec "$CHECK_CONTAINER" redis-cli ping 2>&1 || true)"
    [[ "$reply" == "PONG" ]] || die "self-check: 'docker exec redis-cli ping' inside the container answered '$reply'"
    log "self-check: in-container redis-cli ping: PONG"

    local want
    want="$(image_label "$LABEL_VERSION")"
    reply="$(docker exec "$CHECK_CONTAINER" redis-server --version 2>&1 || true)"
    [[ "$reply" == "$want" ]] \
        || die "self-check: 'redis-server --version' in the container printed '$reply', the image label says '$want'"
    log "self-check: in-container redis-server --version: $reply"

    docker rm -f "$CHECK_CONTAINER" >/dev/null 2>&1 || true
    CHECK_CONTAINER=""
    log "self-check passed"
}

# ---------------------------------------------------------------- main
main() {
    local force="" check_only="" server_arg=""
    while (($#)); do
        case "$1" in
            --force) force=1 ;;
            --check) check_only=1 ;;
            --server)
                (($# >= 2)) && [[ -n "$2" ]] || { usage >&2; die "--server needs a program"; }
                server_arg="$2"
                shift
                ;;
            --server=*) server_arg="${1#--server=}" ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
        shift
    done
    [[ -z "$force" || -z "$check_only" ]] || die "--force and --check are mutually exclusive"
    if [[ -n "$server_arg" ]]; then
        SERVER_BIN="$(resolve_server "$server_arg")"
    fi
    command -v docker >/dev/null 2>&1 || die "docker not found on PATH"
    docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon"

    ensure_redis_installed
    local version
    version="$(server_version)"
    IMAGE="${REDIS_TEST_IMAGE:-$(default_image "$version")}"

    if [[ -n "$check_only" ]]; then
        self_check
        printf '%s\n' "$IMAGE"
        return
    fi

    log "host: $(server_path): $version"

    if [[ -z "$force" ]] && image_up_to_date "$version"; then
        log "image $IMAGE is up to date (same server version); skipping build (use --force to rebuild)"
    else
        build_image "$version"
        self_check
    fi
    printf '%s\n' "$IMAGE"
}

main "$@"
