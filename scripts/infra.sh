#!/usr/bin/env bash
# Local infrastructure for the leaderboard tests, without Docker:
#   - one single-node Redis            (LB_REDIS_PORT, default 6390)
#   - one Redis Cluster of three primaries, each with one replica
#                                      (LB_CLUSTER_PORTS, default "7101 7102 7103 7104 7105 7106",
#                                       LB_CLUSTER_REPLICAS replicas per primary, default 1;
#                                       cluster bus on each port + 10000)
#   - a primary with two replicas under three Sentinels
#                                      (LB_SENTINEL_DATA_PORTS, default "6391 6392 6393", the first
#                                       the primary; LB_SENTINEL_PORTS, default "26391 26392 26393";
#                                       service "lb"): LB_REDIS_SENTINEL_URL in the env file
#   - one Kafka-compatible broker      (LB_KAFKA_PORT, default 9092): nisshi, or tansu as fallback
# Everything binds to 127.0.0.1 and lives under LB_STATE_DIR (data, pid files, logs).
#
# Usage: scripts/infra.sh up|down|status|install|redis-stop|redis-start|env
#
#   install      install what is missing (redis-server from apt, the broker from crates.io)
#   up           install, start everything, wait until ready, write $LB_STATE_DIR/env
#   down         stop everything this script started and delete cluster/broker data
#   status       one line per component; exit 0 only if everything is up
#   redis-stop   stop the single-node Redis only (outage tests); same port on redis-start
#   redis-start  start the single-node Redis only (empty: it has no persistence)
#   env          print the export lines the tests use
#
# Environment (defaults):
#   LB_TOOLS_DIR      $HOME/.local/leaderboard-tools  (broker binary; outside the clone, reused)
#   LB_STATE_DIR      <repo>/target/infra
#   LB_REDIS_PORT     6390
#   LB_CLUSTER_PORTS  "7101 7102 7103 7104 7105 7106"   LB_CLUSTER_REPLICAS 1
#   LB_SENTINEL_DATA_PORTS "6391 6392 6393"   LB_SENTINEL_PORTS "26391 26392 26393"
#   LB_KAFKA_PORT     9092
#   LB_BROKER         auto | nisshi | tansu
#   LB_STOP_TIMEOUT   10   (seconds between SIGTERM and SIGKILL)
#   LB_KAFKA_GROUP_DELAY  0s  (nisshi only: first consumer-group rebalance delay; Kafka's default,
#                              3s, makes every new test group wait; 0 as Kafka test setups use)
set -Eeuo pipefail
trap 'printf "[infra] ERROR: unexpected failure (status %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

log() { printf '[infra] %s\n' "$*" >&2; }
die() {
    printf '[infra] ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ -z ${LB_TOOLS_DIR:-} && -z ${HOME:-} ]]; then
    die "neither LB_TOOLS_DIR nor HOME is set"
fi
LB_TOOLS_DIR=${LB_TOOLS_DIR:-$HOME/.local/leaderboard-tools}
LB_STATE_DIR=${LB_STATE_DIR:-$REPO_ROOT/target/infra}
LB_REDIS_PORT=${LB_REDIS_PORT:-6390}
LB_CLUSTER_PORTS=${LB_CLUSTER_PORTS:-7101 7102 7103 7104 7105 7106}
LB_CLUSTER_REPLICAS=${LB_CLUSTER_REPLICAS:-1}
LB_SENTINEL_DATA_PORTS=${LB_SENTINEL_DATA_PORTS:-6391 6392 6393}
LB_SENTINEL_PORTS=${LB_SENTINEL_PORTS:-26391 26392 26393}
LB_KAFKA_PORT=${LB_KAFKA_PORT:-9092}
LB_BROKER=${LB_BROKER:-auto}
LB_STOP_TIMEOUT=${LB_STOP_TIMEOUT:-10}
LB_KAFKA_GROUP_DELAY=${LB_KAFKA_GROUP_DELAY:-0s}

readonly HOST=127.0.0.1
readonly NISSHI_VERSION=0.8.1
readonly NISSHI_MIN_RUSTC=1.96
readonly TANSU_VERSION=0.6.0
readonly CLUSTER_ID=leaderboard

read -r -a CLUSTER_PORTS <<<"${LB_CLUSTER_PORTS//,/ }"
read -r -a SENTINEL_DATA_PORTS <<<"${LB_SENTINEL_DATA_PORTS//,/ }"
read -r -a SENTINEL_PORTS <<<"${LB_SENTINEL_PORTS//,/ }"
readonly SENTINEL_SERVICE=lb

for port in "$LB_REDIS_PORT" "$LB_KAFKA_PORT" "${CLUSTER_PORTS[@]}"; do
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then die "invalid port: '$port'"; fi
done
((${#CLUSTER_PORTS[@]} >= 3 * (1 + LB_CLUSTER_REPLICAS))) ||
    die "LB_CLUSTER_PORTS needs at least $((3 * (1 + LB_CLUSTER_REPLICAS))) ports for three primaries with $LB_CLUSTER_REPLICAS replica(s) each (got '${LB_CLUSTER_PORTS}')"
case $LB_BROKER in auto | nisshi | tansu) ;; *) die "LB_BROKER must be auto, nisshi or tansu (got '$LB_BROKER')" ;; esac

# cargo may not be on PATH in a non-login shell.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

mkdir -p "$LB_STATE_DIR"
LB_STATE_DIR=$(cd "$LB_STATE_DIR" && pwd) # absolute: redis --daemonize chdirs to --dir
RUN_DIR=$LB_STATE_DIR/run
LOG_DIR=$LB_STATE_DIR/logs
ENV_FILE=$LB_STATE_DIR/env
BROKER_DIR=$LB_STATE_DIR/broker
BROKER_PIDFILE=$RUN_DIR/broker.pid
BROKER_KIND_FILE=$RUN_DIR/broker.kind
ACL_FILE=$LB_STATE_DIR/redis-users.acl
# shellcheck source=lib/redis-acl.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/redis-acl.sh"

# ---------------------------------------------------------------------------
# process helpers

pid_alive() { # pid -> 0 if it runs (a zombie, killed but not yet reaped, counts as dead)
    local stat=
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

read_pid() { # pidfile -> pid on stdout, or nothing
    local pid=
    if [[ -f $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
    [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
    return 0
}

port_open() { # port -> 0 if something accepts TCP connections on 127.0.0.1:port
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

listener_pid() { # port -> pid of the process listening on it (needs ss), or nothing
    command -v ss >/dev/null 2>&1 || return 0
    { ss -Hltnp "sport = :$1" 2>/dev/null || true; } | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | sed -n 1p
}

owned_by_us() { # pid -> 0 if the process' working directory is (or was) under LB_STATE_DIR
    local cwd
    cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
    [[ $cwd == "$LB_STATE_DIR" || $cwd == "$LB_STATE_DIR"/* ]]
}

# SIGTERM to all given processes at once, wait up to LB_STOP_TIMEOUT, then SIGKILL stragglers.
# (Redis takes ~2s to exit on SIGTERM; stopping in parallel keeps `down` short.)
stop_pids() { # name pid [name pid]...
    local names=() pids=() i waited=0 alive
    while (($# >= 2)); do
        if pid_alive "$2"; then
            names+=("$1")
            pids+=("$2")
        fi
        shift 2
    done
    ((${#pids[@]} > 0)) || return 0
    for i in "${!pids[@]}"; do
        log "stopping ${names[i]} (pid ${pids[i]})"
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    while :; do
        alive=()
        for i in "${!pids[@]}"; do
            if pid_alive "${pids[i]}"; then alive+=("$i"); fi
        done
        ((${#alive[@]} > 0)) || return 0
        ((waited < LB_STOP_TIMEOUT * 10)) || break
        sleep 0.1
        waited=$((waited + 1))
    done
    for i in "${alive[@]}"; do
        log "${names[i]} (pid ${pids[i]}) still alive after ${LB_STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "${pids[i]}" 2>/dev/null || true
    done
    sleep 0.2
}

# Stops the processes recorded in the pidfiles, and also whatever of ours still listens on the
# ports (covers a state dir wiped by `cargo clean` while the processes kept running).
stop_components() { # name pidfile port [name pidfile port]...
    local targets=() pid lpid
    while (($# >= 3)); do
        pid=$(read_pid "$2")
        if [[ -n $pid ]]; then targets+=("$1" "$pid"); fi
        lpid=$(listener_pid "$3")
        if [[ -n $lpid && $lpid != "$pid" ]] && owned_by_us "$lpid"; then
            targets+=("$1 (left over on port $3)" "$lpid")
        fi
        shift 3
    done
    if ((${#targets[@]} > 0)); then stop_pids "${targets[@]}"; fi
}

# Before starting on a port: fail clearly if a foreign process holds it, replace a stale one of ours.
claim_port() { # name port
    local name=$1 port=$2 pid
    port_open "$port" || return 0
    pid=$(listener_pid "$port")
    if [[ -n $pid ]] && owned_by_us "$pid"; then
        stop_pids "stale $name on port $port" "$pid"
        port_open "$port" || return 0
    fi
    die "port $port (for $name) is already in use${pid:+ by pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))}; stop it or choose another port via LB_* variables"
}

# For a subshell about to exec a long-lived server: close every inherited fd above 2, so the
# server never holds open a pipe of whoever ran this script (CI would wait for its EOF).
close_extra_fds() {
    local f n
    for f in /proc/"$BASHPID"/fd/*; do
        n=${f##*/}
        if [[ $n =~ ^[0-9]+$ ]] && ((n > 2)); then
            { exec {n}>&-; } 2>/dev/null || true
        fi
    done
}

tail_log() { # file [lines]
    if [[ -f $1 ]]; then tail -n "${2:-30}" "$1" | sed 's/^/    | /' >&2; fi
}

# ---------------------------------------------------------------------------
# installation

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Debian packages the project needs: redis-server (the servers and redis-cli), chromium (the
# api's browser test), libssl-dev and pkg-config (rdkafka's TLS support is built against OpenSSL).
DEBIAN_PACKAGES=(redis-server chromium libssl-dev pkg-config)

install_packages() {
    local missing=() pkg
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    log "installing from apt: ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available; install them yourself"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
            die "apt-get install ${missing[*]} failed"
    fi
    # The Debian package may start a system redis on 6379; it is not ours and we leave it alone.
    command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after install"
}

version_ge() { # a b -> 0 if version a >= version b
    [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | sed -n 1p) == "$2" ]]
}

# Prints a cargo toolchain selector ("" = default, "+name") whose rustc >= NISSHI_MIN_RUSTC.
find_new_toolchain() {
    local v tc
    command -v rustc >/dev/null 2>&1 || return 1
    v=$(rustc --version 2>/dev/null | awk '{print $2}')
    if [[ -n $v ]] && version_ge "${v%%-*}" "$NISSHI_MIN_RUSTC"; then
        printf '\n'
        return 0
    fi
    command -v rustup >/dev/null 2>&1 || return 1
    while read -r tc _; do
        [[ -n $tc ]] || continue
        v=$(RUSTUP_AUTO_INSTALL=0 rustc "+$tc" --version 2>/dev/null | awk '{print $2}') || continue
        if [[ -n $v ]] && version_ge "${v%%-*}" "$NISSHI_MIN_RUSTC"; then
            printf '+%s\n' "$tc"
            return 0
        fi
    done < <(rustup toolchain list 2>/dev/null)
    return 1
}

broker_bin() { printf '%s/bin/%s\n' "$LB_TOOLS_DIR" "$1"; }

broker_installed() { # kind -> 0 if the wanted version is in LB_TOOLS_DIR
    local kind=$1 want bin
    bin=$(broker_bin "$kind")
    [[ -x $bin ]] || return 1
    if [[ $kind == nisshi ]]; then want=$NISSHI_VERSION; else want=$TANSU_VERSION; fi
    "$bin" --version 2>/dev/null | grep -qF "$want"
}

cargo_install() { # kind version toolchain-selector
    local kind=$1 version=$2 tc=$3 build_log
    command -v cargo >/dev/null 2>&1 || die "cargo not found; cannot build the $kind broker"
    mkdir -p "$LB_TOOLS_DIR" "$LOG_DIR"
    build_log=$LOG_DIR/$kind-build.log
    log "building broker: $kind@$version from crates.io with cargo ${tc:-(default toolchain)}"
    log "  into $LB_TOOLS_DIR - this takes ~10-15 minutes on 2 cores, done once per machine (log: $build_log)"
    local start=$SECONDS
    # CARGO_TARGET_DIR unset: never share (and lock) the project's target dir.
    # shellcheck disable=SC2086 # $tc is empty or a single +toolchain word
    if ! env -u CARGO_TARGET_DIR cargo $tc install --locked "$kind@$version" \
        --no-default-features --features dynostore,libsql \
        --root "$LB_TOOLS_DIR" >"$build_log" 2>&1; then
        tail_log "$build_log" 40
        die "building $kind@$version failed (full log: $build_log)"
    fi
    log "built $kind@$version in $((SECONDS - start))s"
}

# Decides which broker to use, building it if needed. Sets BROKER_KIND.
ensure_broker() {
    local tc
    mkdir -p "$LB_TOOLS_DIR"
    # One installer at a time per tools dir (parallel CI jobs, up racing install).
    exec 9>"$LB_TOOLS_DIR/.install.lock"
    if ! flock -n 9; then
        log "another install is running in $LB_TOOLS_DIR, waiting for it"
        flock 9
    fi
    BROKER_KIND=
    if [[ $LB_BROKER != tansu ]] && broker_installed nisshi; then
        BROKER_KIND=nisshi
    elif [[ $LB_BROKER != tansu ]] && tc=$(find_new_toolchain); then
        cargo_install nisshi "$NISSHI_VERSION" "$tc"
        BROKER_KIND=nisshi
    elif [[ $LB_BROKER == nisshi ]]; then
        die "LB_BROKER=nisshi but no Rust toolchain >= $NISSHI_MIN_RUSTC is installed (see 'rustup toolchain list'); use LB_BROKER=tansu or auto"
    elif broker_installed tansu; then
        BROKER_KIND=tansu
    else
        log "no Rust toolchain >= $NISSHI_MIN_RUSTC for nisshi; falling back to tansu $TANSU_VERSION"
        cargo_install tansu "$TANSU_VERSION" ""
        BROKER_KIND=tansu
    fi
    exec 9>&-
    broker_installed "$BROKER_KIND" || die "$(broker_bin "$BROKER_KIND") is not the expected version after install"
}

cmd_install() {
    install_packages
    ensure_broker
    log "redis: $(redis-server --version | awk '{print $3}'), broker: $BROKER_KIND ($(broker_bin "$BROKER_KIND"))"
}

# ---------------------------------------------------------------------------
# redis

redis_cli() { # port args...
    local port=$1
    shift
    redis-cli -h "$HOST" -p "$port" "$@"
}

redis_pidfile() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }

redis_up() { # name port -> 0 if our pid is alive and answers PING
    local pid
    pid=$(read_pid "$(redis_pidfile "$1")")
    pid_alive "$pid" && [[ $(redis_cli "$2" ping 2>/dev/null) == PONG ]]
}

start_redis() { # name port datadir [extra redis-server args...]
    local name=$1 port=$2 dir=$3 pidfile i
    shift 3
    pidfile=$(redis_pidfile "$name")
    if redis_up "$name" "$port"; then
        log "$name already running on port $port"
        return 0
    fi
    rm -f "$pidfile"
    claim_port "$name" "$port"
    mkdir -p "$dir" "$RUN_DIR" "$LOG_DIR"
    (
        close_extra_fds
        exec redis-server --port "$port" --bind "$HOST" --daemonize yes \
            --pidfile "$pidfile" --logfile "$LOG_DIR/$name.log" --dir "$dir" \
            --save "" --appendonly no "$@"
    ) || die "redis-server for $name failed to start (log: $LOG_DIR/$name.log)"
    for ((i = 0; i < 100; i++)); do
        redis_up "$name" "$port" && {
            log "$name up on port $port (pid $(read_pid "$pidfile"))"
            return 0
        }
        sleep 0.1
    done
    tail_log "$LOG_DIR/$name.log"
    die "$name did not answer PING on port $port within 10s (log: $LOG_DIR/$name.log)"
}

# The single Redis has the service's users (scripts/lib/redis-acl.sh) beside the open default user
# the other tests use; their passwords are made once per state directory, readable by us only. The
# rules are written again on every start, from scripts/lib/redis-acl.sh as it is now (the passwords
# kept), so a machine set up before a rule changed gets the new rule.
write_acl_file() {
    local role password
    (
        umask 077
        {
            echo 'user default on nopass ~* &* +@all'
            for role in api ingest admin; do
                password=""
                [[ -s $ACL_FILE ]] && password=$(acl_password "$role")
                [[ -n $password ]] || password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
                redis_acl_user "$role" "$password"
            done
        } >"$ACL_FILE.tmp"
    )
    mv "$ACL_FILE.tmp" "$ACL_FILE"
}

acl_password() { # role -> its password in the ACL file
    sed -n "s/^user lb-$1 .* >\([0-9a-f]*\)\$/\1/p" "$ACL_FILE"
}

start_single_redis() {
    write_acl_file
    start_redis redis "$LB_REDIS_PORT" "$LB_STATE_DIR/redis" --aclfile "$ACL_FILE"
    # A Redis already running reads the rules again.
    redis-cli -p "$LB_REDIS_PORT" ACL LOAD >/dev/null
}
redis_stop_args() { printf '%s\n' redis "$(redis_pidfile redis)" "$LB_REDIS_PORT"; }
stop_single_redis() {
    stop_components redis "$(redis_pidfile redis)" "$LB_REDIS_PORT"
    rm -f "$(redis_pidfile redis)"
}

cluster_info_field() { # port field
    redis_cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

replication_field() { # port field
    redis_cli "$1" info replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

cluster_formed() { # 0 if every node reports ok, all slots and all nodes, and every replica is in sync
    local port n=${#CLUSTER_PORTS[@]}
    for port in "${CLUSTER_PORTS[@]}"; do
        [[ $(cluster_info_field "$port" cluster_state) == ok ]] || return 1
        [[ $(cluster_info_field "$port" cluster_slots_assigned) == 16384 ]] || return 1
        [[ $(cluster_info_field "$port" cluster_known_nodes) == "$n" ]] || return 1
        if [[ $(replication_field "$port" role) == slave ]]; then
            [[ $(replication_field "$port" master_link_status) == up ]] || return 1
        fi
    done
}

start_cluster() {
    local port addrs=() i
    for port in "${CLUSTER_PORTS[@]}"; do
        start_redis "cluster-$port" "$port" "$LB_STATE_DIR/cluster/$port" \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000
        addrs+=("$HOST:$port")
    done
    if cluster_formed; then
        log "cluster already formed (${CLUSTER_PORTS[*]})"
        return 0
    fi
    # Fresh or half-formed: start over from empty nodes.
    for port in "${CLUSTER_PORTS[@]}"; do
        if [[ $(cluster_info_field "$port" cluster_known_nodes) != 1 ||
            $(cluster_info_field "$port" cluster_slots_assigned) != 0 ]]; then
            log "resetting half-formed cluster node $port"
            redis_cli "$port" flushall >/dev/null
            redis_cli "$port" cluster reset hard >/dev/null
        fi
    done
    log "creating cluster: ${addrs[*]}"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$LB_CLUSTER_REPLICAS" --cluster-yes \
        >"$LOG_DIR/cluster-create.log" 2>&1 || {
        tail_log "$LOG_DIR/cluster-create.log"
        die "redis-cli --cluster create failed (log: $LOG_DIR/cluster-create.log)"
    }
    for ((i = 0; i < 300; i++)); do
        cluster_formed && {
            log "cluster state ok on all ${#CLUSTER_PORTS[@]} nodes"
            return 0
        }
        sleep 0.1
    done
    for port in "${CLUSTER_PORTS[@]}"; do redis_cli "$port" cluster info | head -n 7 >&2 || true; done
    die "cluster did not reach cluster_state:ok within 30s"
}

cluster_stop_args() {
    local port
    for port in "${CLUSTER_PORTS[@]}"; do
        printf '%s\n' "cluster-$port" "$(redis_pidfile "cluster-$port")" "$port"
    done
}

# ---------------------------------------------------------------------------
# primary, replicas and Sentinels

start_sentinel_group() {
    local primary=${SENTINEL_DATA_PORTS[0]} port conf i
    start_redis "sentinel-data-$primary" "$primary" "$LB_STATE_DIR/sentinel/$primary"
    for port in "${SENTINEL_DATA_PORTS[@]:1}"; do
        start_redis "sentinel-data-$port" "$port" "$LB_STATE_DIR/sentinel/$port" --replicaof "$HOST" "$primary"
    done
    for port in "${SENTINEL_PORTS[@]}"; do
        if redis_up "sentinel-$port" "$port"; then
            log "sentinel-$port already running"
            continue
        fi
        claim_port "sentinel-$port" "$port"
        mkdir -p "$LB_STATE_DIR/sentinel" "$RUN_DIR" "$LOG_DIR"
        # Sentinel rewrites its configuration file: one writable file per Sentinel.
        conf=$LB_STATE_DIR/sentinel/sentinel-$port.conf
        printf '%s\n' "port $port" "bind $HOST" "daemonize yes" \
            "pidfile $(redis_pidfile "sentinel-$port")" "logfile $LOG_DIR/sentinel-$port.log" \
            "sentinel monitor $SENTINEL_SERVICE $HOST $primary 2" \
            "sentinel down-after-milliseconds $SENTINEL_SERVICE 2000" \
            "sentinel failover-timeout $SENTINEL_SERVICE 10000" >"$conf"
        (
            close_extra_fds
            exec redis-server "$conf" --sentinel
        ) || die "sentinel-$port failed to start (log: $LOG_DIR/sentinel-$port.log)"
        for ((i = 0; i < 100; i++)); do
            redis_up "sentinel-$port" "$port" && break
            sleep 0.1
        done
        redis_up "sentinel-$port" "$port" || die "sentinel-$port did not answer PING within 10s"
        log "sentinel-$port up, monitoring $SENTINEL_SERVICE"
    done
}

sentinel_stop_args() {
    local port
    for port in "${SENTINEL_PORTS[@]}"; do printf '%s\n' "sentinel-$port" "$(redis_pidfile "sentinel-$port")" "$port"; done
    for port in "${SENTINEL_DATA_PORTS[@]}"; do
        printf '%s\n' "sentinel-data-$port" "$(redis_pidfile "sentinel-data-$port")" "$port"
    done
}

# ---------------------------------------------------------------------------
# broker

# Raw Kafka ApiVersions v0 request; succeeds if the broker answers with error_code 0.
kafka_ping() { # port
    if ! command -v python3 >/dev/null 2>&1; then
        port_open "$1" # no python: accepting connections is the best we can check
        return
    fi
    python3 - "$HOST" "$1" <<'PY' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"lb-infra"
# header v1: api_key=18 (ApiVersions), api_version=0, correlation_id, client_id; body v0 is empty
req = struct.pack(">hhih", 18, 0, 4242, len(client)) + client
with socket.create_connection((host, port), timeout=2) as s:
    s.settimeout(2)
    s.sendall(struct.pack(">i", len(req)) + req)
    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf
    (size,) = struct.unpack(">i", read(4))
    body = read(size)
    corr, err, n = struct.unpack(">ihi", body[:10])
    sys.exit(0 if corr == 4242 and err == 0 and n > 0 else 1)
PY
}

broker_up() {
    local pid
    pid=$(read_pid "$BROKER_PIDFILE")
    pid_alive "$pid" && kafka_ping "$LB_KAFKA_PORT"
}

current_broker_kind() {
    if [[ -f $BROKER_KIND_FILE ]]; then cat "$BROKER_KIND_FILE"; else echo none; fi
}

start_broker() {
    local bin pid i log_file=$LOG_DIR/broker.log args
    bin=$(broker_bin "$BROKER_KIND")
    if broker_up; then
        if [[ $(current_broker_kind) == "$BROKER_KIND" ]]; then
            log "broker ($BROKER_KIND) already running on port $LB_KAFKA_PORT"
            return 0
        fi
        log "switching broker from $(current_broker_kind) to $BROKER_KIND"
        stop_broker
    fi
    stop_components broker "$BROKER_PIDFILE" "$LB_KAFKA_PORT" # dead or unresponsive leftovers
    claim_port broker "$LB_KAFKA_PORT"
    rm -rf "$BROKER_DIR"
    mkdir -p "$BROKER_DIR" "$RUN_DIR" "$LOG_DIR"
    args=(broker --cluster-id "$CLUSTER_ID"
        --listener-url "tcp://$HOST:$LB_KAFKA_PORT"
        --advertised-listener-url "tcp://$HOST:$LB_KAFKA_PORT")
    if [[ $BROKER_KIND == nisshi ]]; then
        args+=(--storage-engine memory://nisshi/ --group-initial-rebalance-delay "$LB_KAFKA_GROUP_DELAY")
    else
        # tansu 0.6.0: its memory:// engine loses messages when a consumer group resumes
        # from committed offsets, so use SQLite (a file in the broker's working dir).
        # Caveat: tansu's SQLite engine cannot serve snappy-compressed batches.
        args+=(--storage-engine sqlite://tansu.db)
    fi
    log "starting broker: $bin ${args[*]}"
    # setsid: own session, so a Ctrl-C in the calling terminal or test run does not kill it;
    # cwd = BROKER_DIR: sqlite files land there, and ownership checks use the cwd.
    (
        cd "$BROKER_DIR"
        close_extra_fds
        exec setsid "$bin" "${args[@]}" </dev/null >>"$log_file" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$BROKER_PIDFILE"
    echo "$BROKER_KIND" >"$BROKER_KIND_FILE"
    for ((i = 0; i < 600; i++)); do
        if ! pid_alive "$pid"; then
            tail_log "$log_file"
            die "broker ($BROKER_KIND) exited during startup (log: $log_file)"
        fi
        if kafka_ping "$LB_KAFKA_PORT"; then
            log "broker ($BROKER_KIND) up on port $LB_KAFKA_PORT (pid $pid)"
            return 0
        fi
        sleep 0.1
    done
    tail_log "$log_file"
    die "broker did not answer a Kafka ApiVersions request on port $LB_KAFKA_PORT within 60s (log: $log_file)"
}

stop_broker() {
    stop_components broker "$BROKER_PIDFILE" "$LB_KAFKA_PORT"
    rm -f "$BROKER_PIDFILE"
}

# ---------------------------------------------------------------------------
# commands

env_lines() {
    local urls=() port
    for port in "${CLUSTER_PORTS[@]}"; do urls+=("redis://$HOST:$port"); done
    printf 'export LB_REDIS_URL=redis://%s:%s\n' "$HOST" "$LB_REDIS_PORT"
    local role
    for role in api ingest admin; do
        printf 'export LB_REDIS_%s_URL=redis://lb-%s:%s@%s:%s\n' "${role^^}" "$role" "$(acl_password "$role")" \
            "$HOST" "$LB_REDIS_PORT"
    done
    printf 'export LB_REDIS_CLUSTER_URLS=%s\n' "$(
        IFS=,
        echo "${urls[*]}"
    )"
    local sentinels=()
    for port in "${SENTINEL_PORTS[@]}"; do sentinels+=("$HOST:$port"); done
    printf 'export LB_REDIS_SENTINEL_URL=redis+sentinel://%s/%s\n' "$(
        IFS=,
        echo "${sentinels[*]}"
    )" "$SENTINEL_SERVICE"
    printf 'export LB_KAFKA_BROKERS=%s:%s\n' "$HOST" "$LB_KAFKA_PORT"
    printf 'export LB_KAFKA_BROKER_KIND=%s\n' "$(current_broker_kind)"
}

cmd_up() {
    local start=$SECONDS
    install_packages
    ensure_broker
    start_single_redis
    start_cluster
    start_sentinel_group
    start_broker
    env_lines >"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    log "all up in $((SECONDS - start))s; environment for the tests ($ENV_FILE, passwords masked here):"
    sed -E 's#(://[^:/@]+:)[^@]*@#\1***@#' "$ENV_FILE"
}

cmd_down() {
    local args
    mapfile -t args < <(
        printf '%s\n' broker "$BROKER_PIDFILE" "$LB_KAFKA_PORT"
        cluster_stop_args
        sentinel_stop_args
        redis_stop_args
    )
    stop_components "${args[@]}"
    rm -rf "$BROKER_DIR" "$LB_STATE_DIR/cluster" "$LB_STATE_DIR/sentinel" "$LB_STATE_DIR/redis" "$RUN_DIR" "$ENV_FILE" "$ACL_FILE"
    log "down (logs kept in $LOG_DIR)"
}

status_line() { # name state pid port [note]
    printf '%-14s %-5s pid=%-8s port=%-6s %s\n' "$1" "$2" "${3:--}" "$4" "${5:-}"
}

cmd_status() {
    local all=0 port pid state
    pid=$(read_pid "$(redis_pidfile redis)")
    if redis_up redis "$LB_REDIS_PORT"; then state=up; else state=down all=1; fi
    status_line redis "$state" "$pid" "$LB_REDIS_PORT"
    for port in "${CLUSTER_PORTS[@]}"; do
        pid=$(read_pid "$(redis_pidfile "cluster-$port")")
        if redis_up "cluster-$port" "$port"; then state=up; else state=down all=1; fi
        status_line "cluster-$port" "$state" "$pid" "$port"
    done
    if cluster_formed; then state=ok; else state=down all=1; fi
    status_line cluster "$state" "" "${CLUSTER_PORTS[0]}" "(cluster_state on all nodes)"
    for port in "${SENTINEL_DATA_PORTS[@]}"; do
        pid=$(read_pid "$(redis_pidfile "sentinel-data-$port")")
        if redis_up "sentinel-data-$port" "$port"; then state=up; else state=down all=1; fi
        status_line "sentinel-data-$port" "$state" "$pid" "$port"
    done
    for port in "${SENTINEL_PORTS[@]}"; do
        pid=$(read_pid "$(redis_pidfile "sentinel-$port")")
        if redis_up "sentinel-$port" "$port"; then state=up; else state=down all=1; fi
        status_line "sentinel-$port" "$state" "$pid" "$port"
    done
    pid=$(read_pid "$BROKER_PIDFILE")
    if broker_up; then state=up; else state=down all=1; fi
    status_line "broker" "$state" "$pid" "$LB_KAFKA_PORT" "($(current_broker_kind))"
    return "$all"
}

usage() {
    sed -n '2,/^set -/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

main() {
    local cmd=${1:-}
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status || exit "$?" ;;
    install) cmd_install ;;
    redis-stop) stop_single_redis ;;
    redis-start)
        install_packages
        start_single_redis
        ;;
    env) env_lines ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        die "unknown command '${cmd}'"
        ;;
    esac
}

# Sourcing the file (for debugging) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
