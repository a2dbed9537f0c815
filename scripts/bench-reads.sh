#!/usr/bin/env bash
# Reads while writes are heavy, open loop: a board of 10,000,000 players; ingest applying loadgen's
# 30,000 and then 150,000 events/s while loadgen reads at a fixed offered rate (latency counted
# from each request's due time, so a stall is not hidden: no coordinated omission). Then, side
# by side, the cached top-100 from the api against the same bytes served as a static file by
# Debian's nginx, both driven by wrk with the same connections.
#
# Usage: scripts/bench-reads.sh [--players N] [--read-rate R] [--duration 60s] [--heavy-rate 150000]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=10000000 read_rate=10000 duration=60s heavy_rate=150000 heavy_read_rate=1000
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --read-rate) read_rate=$2; shift ;;
        --duration) duration=$2; shift ;;
        --heavy-rate) heavy_rate=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
ensure_wrk
command -v nginx >/dev/null 2>&1 || {
    echo "installing nginx from apt" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y nginx-light >/dev/null || apt-get install -y nginx >/dev/null
    else sudo apt-get install -y nginx-light >/dev/null || sudo apt-get install -y nginx >/dev/null; fi
}
bench_setup readbench -p ingest -p api -p loadgen
export LB_LAYOUT=single LB_LOADGEN_PLAYERS=$players
target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
start_ingest
port=$(free_port)
api=http://127.0.0.1:$port
start_api "$port"

run_load() { # label write-rate read-rate
    echo "== $1: $2 events/s written, $3 reads/s offered (half top-100, half rank), $duration"
    target/release/loadgen run --api "$api" --rate "$2" --read-rate "$3" --duration "$duration" \
        --verify-sample 1000 --report "$out/$1.json" >"$out/$1.log" 2>&1 || true
    grep -E "^(writes|reads|freshness|verification)" "$out/$1.log" || tail -5 "$out/$1.log"
}
run_load moderate 30000 "$read_rate"
run_load heavy "$heavy_rate" "$heavy_read_rate"

# The cached top-100's bytes, served by nginx as a static file at the same path.
static=$out/static
mkdir -p "$static/v1/boards/$run"
curl -sf "$api/v1/boards/$run/top?limit=100" >"$static/v1/boards/$run/top"
nginx_port=$(free_port)
cat >"$out/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $PWD/$out/nginx.pid;
error_log $PWD/$out/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$nginx_port;
        root $PWD/$static;
        default_type application/json;
        location / { try_files \$uri =404; }
    }
}
CONF
bench_background nginx -c "$PWD/$out/nginx.conf"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$nginx_port/v1/boards/$run/top" >/dev/null && break; sleep 0.1; done
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua
for round in 1 2; do
    echo "-- round $round: top 100 from the api (32 connections, 20s)"
    wrk -t2 -c32 -d20s -s "$REPORT_LUA" "$api/v1/boards/$run/top?limit=100"
    echo "-- round $round: the same bytes from nginx (32 connections, 20s)"
    wrk -t2 -c32 -d20s -s "$REPORT_LUA" "http://127.0.0.1:$nginx_port/v1/boards/$run/top"
done
