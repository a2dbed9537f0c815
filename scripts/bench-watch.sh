#!/usr/bin/env bash
# Live streams against polling, side by side on one api: CLIENTS clients follow the top of a
# board, first each with a live stream (top:watch), then each polling /top once per second,
# while ingest applies loadgen's 30,000 events/s to a board of PLAYERS players. For each, over
# the same window (clients opening, DURATION of markers, 5 s to settle): the api's CPU seconds
# and peak resident memory, and the delay from a marker score's produce to its arrival at each
# client (`loadgen watch`: p50, p99), then the ratios poll / stream.
#
# Usage: scripts/bench-watch.sh [--clients 10000] [--players 10000000] [--duration 60s] [--rate 30000]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

clients=10000 players=10000000 duration=60s rate=30000
while (($#)); do
    case $1 in
        --clients) clients=$2; shift ;;
        --players) players=$2; shift ;;
        --duration) duration=$2; shift ;;
        --rate) rate=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# One descriptor per client in loadgen and in the api.
ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > clients + 1000)) || { echo "open files limited to $(ulimit -n): too few for $clients clients" >&2; exit 1; }

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
bench_setup watchbench -p ingest -p api -p loadgen
export LB_LAYOUT=single LB_LOADGEN_PLAYERS=$players
target/release/loadgen topics --partitions 6 --dlq-partitions 1
target/release/loadgen seed
start_ingest
# The write load's own reads and freshness probe go to an api of their own.
port=$(free_port)
start_api "$port"
seconds=$(python3 -c "import sys; print(int(float(sys.argv[1].rstrip('s'))))" "$duration")
# The write load covers both phases (each: clients opening, the markers, settling).
bench_background target/release/loadgen run --api "http://127.0.0.1:$port" --rate "$rate" --read-rate 100 \
    --duration "$((2 * seconds + 180))s" --report "$out/load.json" >"$out/load.log" 2>&1
load_pid=${bench_pids[-1]}
sleep 10 # the load reaches its rate before the first window opens

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
declare -A cpu peak
for mode in stream poll; do
    echo "== $mode: $clients clients, markers for $duration, $rate events/s written"
    port=$(free_port)
    api=http://127.0.0.1:$port
    start_api "$port" LB_WATCH_MAX_STREAMS=$((clients + 100)) LB_WATCH_PER_CLIENT=$((clients + 100))
    api_pid=${bench_pids[-1]}
    echo "api resident before: $(($(rss_kb "$api_pid") / 1024)) MiB"
    before=$(cpu_ticks "$api_pid")
    started=$(date +%s.%N)
    max=0
    target/release/loadgen watch --api "$api" --mode "$mode" --clients "$clients" --duration "$duration" \
        --watch-board "$run-watch-$mode" --report "$out/watch-$mode.json" >"$out/watch-$mode.log" 2>&1 &
    watcher=$!
    while kill -0 "$watcher" 2>/dev/null; do
        now=$(rss_kb "$api_pid")
        ((now > max)) && max=$now
        sleep 1
    done
    wait "$watcher"
    elapsed=$(python3 -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$started")
    cpu[$mode]=$(python3 -c "import sys; print(f'{($(cpu_ticks "$api_pid") - $before) / $hz:.1f}')")
    peak[$mode]=$((max / 1024))
    grep -v "^report written" "$out/watch-$mode.log"
    echo "api: ${cpu[$mode]} cpu seconds over $(printf %.0f "$elapsed") s, peak resident ${peak[$mode]} MiB"
    kill -TERM "$api_pid"
    wait "$api_pid" 2>/dev/null || true
done
kill -TERM "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true

python3 - "$out" "${cpu[stream]}" "${cpu[poll]}" "${peak[stream]}" "${peak[poll]}" <<'PY'
import json, sys
out, cpu_s, cpu_p, rss_s, rss_p = sys.argv[1], *map(float, sys.argv[2:])
s = json.load(open(f"{out}/watch-stream.json"))
p = json.load(open(f"{out}/watch-poll.json"))
rows = [("api cpu seconds", cpu_s, cpu_p), ("api peak resident MiB", rss_s, rss_p),
        ("delay p50 ms", s["delay_ms_p50"], p["delay_ms_p50"]), ("delay p99 ms", s["delay_ms_p99"], p["delay_ms_p99"]),
        ("failed clients", s["failed_clients"], p["failed_clients"]), ("missed arrivals", s["missed"], p["missed"])]
print(f"\n{'':24}{'stream':>12}{'poll':>12}{'poll/stream':>14}")
for name, a, b in rows:
    ratio = f"{b / a:.2f}x" if a else "-"
    print(f"{name:24}{a:>12.1f}{b:>12.1f}{ratio:>14}")
PY
echo "reports: $out"
