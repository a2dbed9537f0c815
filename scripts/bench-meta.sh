#!/usr/bin/env bash
# What entry metadata costs (docs/metadata.md), side by side in one run:
#   1. memory per player: boards of PLAYERS seeded players without metadata, with exactly 64 and
#      256 bytes on every entry, and with loadgen's mix (MEMORY USAGE of every key of each board);
#   2. ingest's drain rate: EVENTS realistic events without metadata, then the same events with the
#      mix, one worker, interleaved A B A B, ROUNDS times (scripts/bench-ingest.sh);
#   3. the cached top 100 with metadata: the api against the same bytes served as a static file by
#      Debian's nginx, and the api's top 100 without metadata, ROUNDS times each (wrk, closed loop).
#
# Usage: scripts/bench-meta.sh [--players N] [--events N] [--rounds N] [--duration 20s] [--connections 32]
#   defaults: 1,000,000 players, 2,000,000 events, 2 rounds, 20s, 32 connections
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."

players=1000000 events=2000000 rounds=2 duration=20s connections=32
while (($#)); do
    case $1 in
        --players) players=$2; shift ;;
        --events) events=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --duration) duration=$2; shift ;;
        --connections) connections=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
ensure_wrk
ensure_nginx
bench_setup metabench -p ingest -p api -p loadgen -p admin
export LB_LAYOUT=single LB_LOADGEN_PLAYERS=$players
redis_port=${LB_REDIS_URL##*:}
echo "== $players players per board, layout single; $events events per drain, $rounds round(s)"

sizes=(none 64 256 mix)
declare -A bytes
for size in "${sizes[@]}"; do
    board=$run-$size
    if [[ $size == none ]]; then
        env -u LB_LOADGEN_META LB_LOADGEN_BOARD="$board" target/release/loadgen seed
    else
        LB_LOADGEN_META=$size LB_LOADGEN_BOARD="$board" target/release/loadgen seed
    fi
    bytes[$size]=$(board_bytes "$board")
    printf 'memory  meta %-5s %12d bytes  %6.1f bytes/player\n' "$size" "${bytes[$size]}" \
        "$(bc -l <<<"${bytes[$size]} / $players")"
done
# The mix's mean size, from the seeded entries themselves.
mix_key=$(redis-cli -p "$redis_port" --scan --pattern "lb:{$run-mix}:m" | head -1)
mix_mean=$(redis-cli -p "$redis_port" --raw HRANDFIELD "$mix_key" 2000 WITHVALUES |
    awk 'NR % 2 == 0 { n++; total += length($0) } END { printf "%.0f", total / n }')

interleaved_drains "$rounds" "without metadata" "-u LB_LOADGEN_META" "with metadata (mix)" \
    "LB_LOADGEN_META=mix" --events "$events" --players "$players" | tee "$out/drains.txt"

port=$(free_port)
api=http://127.0.0.1:$port
start_api "$port"
with=$run-mix without=$run-none
static=$out/static
mkdir -p "$static/v1/boards/$with"
curl -sf "$api/v1/boards/$with/top?limit=100" >"$static/v1/boards/$with/top"
page_bytes=$(wc -c <"$static/v1/boards/$with/top")
plain_bytes=$(curl -sf "$api/v1/boards/$without/top?limit=100" | wc -c)
nginx_port=$(start_static_nginx "$static")
export REPORT_LUA=$SCRIPT_DIR/wrk/report.lua
declare -A rps
for round in $(seq 1 "$rounds"); do
    for side in api nginx plain; do
        case $side in
            api) url="$api/v1/boards/$with/top?limit=100" ;;
            nginx) url="http://127.0.0.1:$nginx_port/v1/boards/$with/top" ;;
            plain) url="$api/v1/boards/$without/top?limit=100" ;;
        esac
        echo "-- round $round: top 100, $side ($connections connections, $duration)"
        result=$(wrk -t2 -c"$connections" -d"$duration" -s "$REPORT_LUA" "$url")
        echo "$result" | grep -E 'Requests/sec|latency ms|Non-2xx' || true
        rps[$side]+="$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$result") "
    done
done

echo
echo "side by side (layout single, $players players per board):"
for size in "${sizes[@]}"; do
    printf '  memory per player, meta %-5s %6.1f B  (+%.1f B over none)\n' "$size" \
        "$(bc -l <<<"${bytes[$size]} / $players")" "$(bc -l <<<"(${bytes[$size]} - ${bytes[none]}) / $players")"
done
echo "  the mix's mean metadata: $mix_mean bytes"
tail -2 "$out/drains.txt"
echo "  top 100 req/s: api with metadata (${page_bytes} B page) ${rps[api]}| nginx, same bytes ${rps[nginx]}| api without metadata (${plain_bytes} B page) ${rps[plain]}"
