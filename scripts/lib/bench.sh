# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, after `cd` to the repository root and with SCRIPT_DIR
# set): the release build, the local infrastructure, a run of one's own, free ports, services
# started in the background and stopped on exit.

# bench_setup PREFIX CARGO_ARGS...: builds the release binaries, starts scripts/infra.sh, loads its
# environment, and sets `run` (PREFIX-<time>, also the topic, dead-letter topic, consumer group and
# board of this run) and `out` (target/bench/<run>, for logs and reports).
bench_setup() {
    local prefix=$1
    shift
    cargo build --release --locked -q "$@"
    bash "$SCRIPT_DIR/infra.sh" up >/dev/null
    # shellcheck source=/dev/null
    source target/infra/env
    run=$prefix-$(date +%Y%m%d-%H%M%S)
    out=target/bench/$run
    mkdir -p "$out"
    export LB_TOPIC=$run LB_DLQ_TOPIC=$run.dlq LB_INGEST_GROUP=$run LB_LOADGEN_BOARD=$run
    bench_pids=()
    trap bench_stop EXIT
}

# bench_stop: stops every service started by start_api / start_ingest / bench_background.
bench_stop() {
    local pid
    for pid in "${bench_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${bench_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# free_port: a free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_ingest [VAR=value...]: one ingest worker in the background, logging to $out.
start_ingest() {
    env LB_INGEST_METRICS_ADDR=127.0.0.1:0 "$@" target/release/ingest >"$out/ingest-${#bench_pids[@]}.log" 2>&1 &
    bench_pids+=($!)
}

# start_api PORT [VAR=value...]: the api on PORT in the background, waiting until it is ready.
start_api() { start_api_bin target/release/api "$@"; }

# start_api_bin BINARY PORT [VAR=value...]: start_api with another build of the api.
start_api_bin() {
    local bin=$1 port=$2
    shift 2
    env LB_API_ADDR="127.0.0.1:$port" "$@" "$bin" >"$out/api-$port.log" 2>&1 &
    bench_pids+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0; sleep 0.1; done
    echo "the api on port $port did not become ready (log: $out/api-$port.log)" >&2
    return 1
}

# build_rev REV PACKAGE...: REV's release build of PACKAGE... in its own worktree and target
# directory (target/bench-rev/<sha>), so neither build invalidates the other's; prints the tree.
build_rev() {
    local sha tree package args=()
    sha=$(git rev-parse --short "$1")
    shift
    for package in "$@"; do args+=(-p "$package"); done
    tree=target/bench-rev/$sha
    if [[ ! -d $tree/.git && ! -f $tree/.git ]]; then
        rm -rf "$tree"
        git worktree prune
        git worktree add --detach "$tree" "$sha" >/dev/null
    fi
    (cd "$tree" && cargo build --release --locked -q "${args[@]}") >&2
    echo "$tree"
}

# bench_background COMMAND...: any other process, stopped on exit like the services.
bench_background() {
    "$@" &
    bench_pids+=($!)
}

# ensure_wrk: wrk from apt when missing.
ensure_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    echo "installing wrk from apt" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
}

# ensure_nginx: Debian's nginx from apt when missing (the static-file reference of the read benchmarks).
ensure_nginx() {
    command -v nginx >/dev/null 2>&1 && return 0
    echo "installing nginx from apt" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y nginx-light >/dev/null || apt-get install -y nginx >/dev/null
    else sudo apt-get install -y nginx-light >/dev/null || sudo apt-get install -y nginx >/dev/null; fi
}

# start_static_nginx ROOT: nginx serving the files under ROOT as JSON on a free port, in the
# background like the services, once it answers; prints the port.
start_static_nginx() {
    local root=$1 port
    port=$(free_port)
    cat >"$out/nginx-$port.conf" <<CONF
worker_processes auto;
daemon off;
pid $PWD/$out/nginx-$port.pid;
error_log $PWD/$out/nginx-$port-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$port;
        root $PWD/$root;
        default_type application/json;
        location / { try_files \$uri =404; }
    }
}
CONF
    bench_background nginx -c "$PWD/$out/nginx-$port.conf" >&2
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    echo "$port"
}

# board_bytes BOARD: the bytes (MEMORY USAGE, every element) of every key whose hash tag starts with
# BOARD (its shards, seasons, metadata and indexes), on the single Redis of scripts/infra.sh.
board_bytes() {
    local board=$1 port=${LB_REDIS_URL##*:} total=0 key bytes
    while read -r key; do
        [[ -z $key ]] && continue
        bytes=$(redis-cli -p "$port" MEMORY USAGE "$key" SAMPLES 0)
        total=$((total + bytes))
    done < <(redis-cli -p "$port" --scan --pattern "lb:{$board*")
    echo "$total"
}

# drain_rate OUTPUT: the events/s of the last "drained ..." line of loadgen drain in OUTPUT.
drain_rate() { grep -oE '[0-9]+ events/s' <<<"$1" | tail -1 | grep -oE '^[0-9]+'; }

# interleaved_drains ROUNDS LABEL_A ENV_A LABEL_B ENV_B [bench-ingest.sh options...]: ingest's drain
# rate on two configurations side by side, A B A B, ROUNDS times each, same binaries, same events.
# ENV_*: the words `env` takes for that side (`VAR=value`, `-u VAR`), space-separated.
interleaved_drains() {
    local rounds=$1 labels=("$2" "$4") envs=("$3" "$5") round side out
    local rates=("" "")
    shift 5
    for round in $(seq 1 "$rounds"); do
        for side in 0 1; do
            echo "== round $round: ${labels[side]}"
            # shellcheck disable=SC2086 # the settings are separate words on purpose
            out=$(env ${envs[side]} bash "$SCRIPT_DIR/bench-ingest.sh" "$@" 2>&1)
            grep -E '^(filled|ingest:|drained)' <<<"$out"
            rates[side]+="$(drain_rate "$out") "
        done
    done
    echo
    echo "drain rate (events/s), $rounds round(s) each, interleaved:"
    printf '  %-26s %s\n' "${labels[0]}:" "${rates[0]}" "${labels[1]}:" "${rates[1]}"
}
