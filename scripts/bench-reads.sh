#!/usr/bin/env bash
# Reads while writes are heavy, open loop: a board of 10,000,000 players; ingest applying loadgen's
# 30,000 and then 150,000 events/s while loadgen reads at a fixed offered rate (latency counted
# from each request's due time, so a stall is not hidden: no coordinated omission). Each load runs
# twice: as deployed, then with ingest at a lower CPU priority (`renice +10`: writes yield the CPU
# to reads), and each phase prints the CPU seconds every process used (where the time goes).
# Then, side by side: the cached top-100 from the api against the same bytes served as a static
# file by Debian's nginx, and the rank route against redis-benchmark sending the very Redis
# command the route sends, all with the same connection counts.
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
ensure_nginx
bench_setup readbench -p ingest -p api -p loadgen -p leaderboard-benches
export LB_LAYOUT=single LB_LOADGEN_PLAYERS=$players
target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
start_ingest
port=$(free_port)
api=http://127.0.0.1:$port
start_api "$port"

ingest_pid=${bench_pids[0]}
api_pid=${bench_pids[1]}
redis_port=${LB_REDIS_URL##*:}
redis_pid=$(pgrep -f "redis-server 127.0.0.1:${redis_port%%/*}" | head -1)
broker_pid=$(pgrep -x nisshi | head -1 || true)
declare -A procs=([api]=$api_pid [ingest]=$ingest_pid [redis]=$redis_pid [broker]=$broker_pid)
cpu_ticks() { [[ -n $1 && -r /proc/$1/stat ]] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }

run_load() { # label write-rate read-rate
    echo "== $1: $2 events/s written, $3 reads/s offered (half top-100, half rank), $duration"
    local name
    declare -A before
    for name in "${!procs[@]}"; do before[$name]=$(cpu_ticks "${procs[$name]}"); done
    local TIMEFORMAT="%U %S"
    { time target/release/loadgen run --api "$api" --rate "$2" --read-rate "$3" --duration "$duration" \
        --verify-sample 1000 --report "$out/$1.json" >"$out/$1.log" 2>&1 || true; } 2>"$out/$1.time"
    grep -E "^(writes|reads|freshness|as_of|max consumer|verification)" "$out/$1.log" || tail -5 "$out/$1.log"
    local hz line="cpu seconds:"
    hz=$(getconf CLK_TCK)
    for name in api ingest redis broker; do
        line+=" $name $(python3 -c "print(f'{($(cpu_ticks "${procs[$name]}") - ${before[$name]}) / $hz:.0f}')")"
    done
    echo "$line loadgen $(awk '{printf "%.0f", $1 + $2}' "$out/$1.time")"
}
# Writes yield the CPU to reads: reads have a 50 ms budget, writes a 10 s freshness budget. Only
# ingest: the broker is infrastructure (its own machines in production), and slowing it here slows
# loadgen's producer too, which then stands for the game servers.
deprioritize_writes() { renice -n "$1" -p "$ingest_pid" >/dev/null; }
run_load moderate 30000 "$read_rate"
deprioritize_writes 10
run_load moderate-ingest-niced 30000 "$read_rate"
deprioritize_writes 0
run_load heavy "$heavy_rate" "$heavy_read_rate"
deprioritize_writes 10
run_load heavy-ingest-niced "$heavy_rate" "$heavy_read_rate"
deprioritize_writes 0

# The cached top-100's bytes, served by nginx as a static file at the same path.
static=$out/static
mkdir -p "$static/v1/boards/$run"
curl -sf "$api/v1/boards/$run/top?limit=100" >"$static/v1/boards/$run/top"
nginx_port=$(start_static_nginx "$static")
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua
for round in 1 2; do
    echo "-- round $round: top 100 from the api (32 connections, 20s)"
    wrk -t2 -c32 -d20s -s "$REPORT_LUA" "$api/v1/boards/$run/top?limit=100"
    echo "-- round $round: the same bytes from nginx (32 connections, 20s)"
    wrk -t2 -c32 -d20s -s "$REPORT_LUA" "http://127.0.0.1:$nginx_port/v1/boards/$run/top"
done

# The rank route against redis-benchmark sending the command that route sends (one player: the
# script's cost does not depend on which; the api gets random players so its single flight never
# merges requests). Same 32 connections, no writes meanwhile.
eval "rank_cmd=($(target/release/rank-command "$run" p-00000001))"
for round in 1 2; do
    echo "-- round $round: rank from the api, random players (32 connections, 20s)"
    BOARD=$run PLAYERS=$players wrk -t2 -c32 -d20s -s "$SCRIPT_DIR/wrk/rank.lua" "$api"
    echo "-- round $round: redis-benchmark, the same EVAL_RO (32 connections, 400000 requests)"
    redis-benchmark -h 127.0.0.1 -p "${redis_port%%/*}" -c 32 -n 400000 "${rank_cmd[@]}" | tr '\r' '\n' \
        | grep -a -A4 "^Summary" | tail -4
done
