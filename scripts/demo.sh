#!/usr/bin/env bash
# The whole pipeline on loopback, under load, with a report:
#   1. builds the release binaries (ingest, api, loadgen)
#   2. starts Redis and the Kafka-protocol broker (scripts/infra.sh up; installs what is missing)
#   3. creates the topics and seeds fresh boards with every player's initial score
#   4. starts ingest and the api
#   5. runs loadgen: 30,000 events/s for 60 s with read load and the freshness probe,
#      waits for ingest to catch up, verifies the api against its oracle, prints the report
#   6. stops everything it started, also on Ctrl-C
#
# Usage: scripts/demo.sh [options]
#   --quick              a short, smaller run: 200,000 players, 15 s
#   --players N          players (default 10,000,000)
#   --boards K           spread the players over K boards (default 1)
#   --rate R             score events per second (default 30000)
#   --duration D         load duration, e.g. 60s (default 60s)
#   --read-rate R        HTTP reads per second (default 1000)
#   --layout L           single | hash:<n> | range:<b1>,<b2>,... (default single)
#   --order O            desc | asc: the boards' order (asc: lower is better, events carry lap times)
#   --ties T             shared | earliest: the boards' tie rule (earliest: first to reach a score is ahead)
#   --reset E            hour | day | week | month: the boards have seasons. Every process runs a
#                        simulated clock (one day per 20 s; with hour, one hour per 20 s) starting 5 s
#                        before a reset, so a 30 s run (the default with --reset; 40 s with hour)
#                        crosses two boundaries; late grace 12 h simulated (30 min with hour: 10 s).
#                        Loadgen verifies every season and the all-time board, and each closed
#                        season's result record (on a results topic of the run's own) against its oracle.
#   --meta               every event carries metadata (a name, a country, details of the run: about
#                        64, 130 or 256 bytes, docs/contract.md#entry-metadata); the page shows names
#                        and flags, and the verification compares every entry's metadata too
#   --operator O         best | last | sum: how the boards combine a player's events
#                        (docs/contract.md#write-operators). With last or sum every event carries an
#                        id, 1% of events are produced twice in a row and 1% re-send an earlier event
#                        with its id (--duplicate-share, --resend-share change that); ingest applies
#                        each game once and loadgen's oracle checks every total. Needs --order desc,
#                        and no --reset (any layout).
#   --duplicate-share S  share of events produced twice in a row (with --operator last|sum; default 0.01)
#   --resend-share S     share of events after which an earlier one is re-sent (default 0.01)
#   --erase N            erase N players during the load (the api's admin route), spread over it
#   --ban N              ban N players during the load (half from every board, half from their own;
#                        closed seasons included; never lifted). With either, the api gets an admin
#                        token made for this run, the store is database 13 of the local Redis (emptied
#                        first: erasures and bans are store-wide, loadgen's player ids are every run's),
#                        and loadgen's oracle learns each call: the report says how many were made
#                        and judges every answer read about those players after each call returned.
#   --existing           use an existing deployment: start nothing, seed nothing unless --redis is given;
#                        needs --brokers and --api (and --redis to seed, with the deployment's --layout)
#   --brokers B --redis URL --api URL   where the existing deployment is (with --erase or --ban:
#                        LB_LOADGEN_ADMIN_TOKEN holds one of its admin tokens)
# Logs: target/demo/<run>/ (ingest.log, api.log, report.json).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO_ROOT"

players=10000000 boards=1 rate=30000 duration='' read_rate=1000 layout=single order=desc ties=shared
reset='' quick=0 existing=0 brokers='' redis='' api='' erase=0 ban=0 meta=0 operator=best
duplicate_share=0.01 resend_share=0.01
while (($#)); do
    case $1 in
        --quick) players=200000 quick=1 ;;
        --players) players=$2; shift ;;
        --boards) boards=$2; shift ;;
        --rate) rate=$2; shift ;;
        --duration) duration=$2; shift ;;
        --read-rate) read_rate=$2; shift ;;
        --layout) layout=$2; shift ;;
        --order) order=$2; shift ;;
        --ties) ties=$2; shift ;;
        --reset) reset=$2; shift ;;
        --meta) meta=1 ;;
        --operator) operator=$2; shift ;;
        --duplicate-share) duplicate_share=$2; shift ;;
        --resend-share) resend_share=$2; shift ;;
        --erase) erase=$2; shift ;;
        --ban) ban=$2; shift ;;
        --existing) existing=1 ;;
        --brokers) brokers=$2; shift ;;
        --redis) redis=$2; shift ;;
        --api) api=$2; shift ;;
        -h | --help) sed -n '2,47p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

[[ $boards =~ ^[1-9][0-9]*$ ]] || { echo "--boards needs a positive number, got '$boards'" >&2; exit 2; }
[[ $order == desc || $order == asc ]] || { echo "--order is desc or asc, got '$order'" >&2; exit 2; }
[[ $ties == shared || $ties == earliest ]] || { echo "--ties is shared or earliest, got '$ties'" >&2; exit 2; }
[[ -z $reset || $reset == hour || $reset == day || $reset == week || $reset == month ]] ||
    { echo "--reset is hour, day, week or month, got '$reset'" >&2; exit 2; }
[[ $operator == best || $operator == last || $operator == sum ]] ||
    { echo "--operator is best, last or sum, got '$operator'" >&2; exit 2; }
[[ $erase =~ ^[0-9]+$ && $ban =~ ^[0-9]+$ ]] ||
    { echo "--erase and --ban need a number of players, got '$erase' and '$ban'" >&2; exit 2; }
marks=$((erase + ban))
if ((marks && existing)) && [[ -z ${LB_LOADGEN_ADMIN_TOKEN:-} ]]; then
    echo "--erase and --ban on an existing deployment need LB_LOADGEN_ADMIN_TOKEN (one of its admin tokens)" >&2
    exit 2
fi
if [[ -z $duration ]]; then
    duration=60s
    ((${quick:-0})) && duration=15s
    [[ -n $reset ]] && duration=30s # two day boundaries at 5 s and 25 s
    # Two hour boundaries at 5 s and 25 s, and time for the second hour to close (10 s of grace).
    [[ $reset == hour ]] && duration=40s
fi

say() { printf '\n[demo] %s\n' "$*" >&2; }
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

run_id=$(date +%Y%m%d-%H%M%S)
out=target/demo/$run_id
mkdir -p "$out"
board=demo-$run_id
started_infra=0
pids=()

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if ((started_infra)); then
        bash "$SCRIPT_DIR/infra.sh" down >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'say "interrupted: stopping everything"; exit 130' INT TERM

say "building release binaries (first build takes several minutes)"
cargo build --release --locked -p ingest -p api -p loadgen
bin=target/release

if ((existing)); then
    [[ -n $brokers && -n $api ]] || { echo "--existing needs --brokers and --api" >&2; exit 2; }
else
    if ! bash "$SCRIPT_DIR/infra.sh" status >/dev/null 2>&1; then
        started_infra=1
    fi
    say "starting Redis and the broker"
    bash "$SCRIPT_DIR/infra.sh" up
    # shellcheck source=/dev/null
    source target/infra/env
    brokers=$LB_KAFKA_BROKERS redis=$LB_REDIS_URL
    if ((marks)); then
        # A store of its own: erasures and bans reach every board of a store, and loadgen's ids
        # (p-00000042) are every run's and every test's.
        redis=${redis%/}/13
        redis-cli -u "$redis" flushdb >/dev/null
        # An admin token made for this run: loadgen presents it, the api holds its SHA-256.
        LB_LOADGEN_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        export LB_LOADGEN_ADMIN_TOKEN
        LB_ADMIN_TOKENS=demo:$(printf %s "$LB_LOADGEN_ADMIN_TOKEN" | sha256sum | cut -d' ' -f1):admin
        export LB_ADMIN_TOKENS
        # A players log of its own: the api keeps every erasure and ban there too, and the shared
        # scores.players would give them back to any later recovery of loadgen's ids.
        LB_PLAYERS_TOPIC=scores.players.demo-$(date +%s)-$$
        export LB_PLAYERS_TOPIC
        say "erasures and bans: the store is $redis (emptied), players log $LB_PLAYERS_TOPIC, an admin token made for this run"
    fi
    api_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    api=http://127.0.0.1:$api_port
fi

export LB_KAFKA_BROKERS=$brokers LB_LAYOUT=$layout LB_LOADGEN_BOARD=$board LB_LOADGEN_BOARDS=$boards
export LB_LOADGEN_ORDER=$order LB_LOADGEN_TIES=$ties
export LB_LOADGEN_PLAYERS=$players
if [[ -n $reset ]]; then
    # One simulated clock for every process: 4,320 times real time (a day per 20 s), reading
    # 5 s (real) before the first UTC midnight at least a day ahead when the run starts; for
    # hourly seasons 180 times (an hour per 20 s), 5 s before an hour at least an hour ahead.
    now_ms=$(($(date +%s%3N)))
    if [[ $reset == hour ]]; then
        speed=180 grace=30m
        boundary_ms=$(((now_ms / 3600000 + 2) * 3600000))
    else
        speed=4320 grace=12h
        boundary_ms=$(((now_ms / 86400000 + 2) * 86400000))
    fi
    export LB_LOADGEN_RESET=$reset LB_LOADGEN_LATE_GRACE=$grace
    # The run's own results topic: ids of earlier runs' seasons would be the same.
    LB_SEASON_RESULTS_TOPIC=scores.seasons.demo-$(date +%s)-$$
    export LB_SEASON_RESULTS_TOPIC
    say "seasons: reset every $reset, a simulated clock ${speed} times real time, results on $LB_SEASON_RESULTS_TOPIC"
fi
# The simulated clock starts when the services do (after seeding, which takes minutes at 10 M):
# 5 s before a boundary then, so the load crosses the boundaries the options above promise.
start_clock() {
    [[ -n $reset ]] || return 0
    local now_ms
    now_ms=$(date +%s%3N)
    export LB_CLOCK=sim:$now_ms:$((boundary_ms - 5000 * speed)):$speed
    say "simulated clock $LB_CLOCK"
}
[[ -n $redis ]] && export LB_REDIS_URL=$redis
if ((meta)); then
    export LB_LOADGEN_META=mix
    say "metadata on every event (a mix of about 64, 130 and 256 bytes)"
fi
export LB_LOADGEN_OPERATOR=$operator
repeats=()
if [[ $operator != best ]]; then
    repeats=(--duplicate-share "$duplicate_share" --resend-share "$resend_share")
    say "operator $operator: every event carries an id; $duplicate_share of events produced twice, $resend_share re-send an earlier one"
fi

if ((!existing)); then
    say "creating topics"
    "$bin/loadgen" topics --partitions 6
fi
if [[ -n $redis ]]; then
    say "seeding $players players on $boards board(s) named after $board"
    "$bin/loadgen" seed
fi

start_clock
if ((!existing)); then
    say "starting ingest and the api (logs in $out)"
    LB_INGEST_METRICS_ADDR=127.0.0.1:$metrics_port "$bin/ingest" >"$out/ingest.log" 2>&1 &
    pids+=($!)
    LB_API_ADDR=127.0.0.1:$api_port "$bin/api" >"$out/api.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('$api/readyz', timeout=1)" 2>/dev/null; then break; fi
        sleep 0.1
    done
    first_board=$board
    ((boards > 1)) && first_board=$board-1
    say "api at $api (web page: $api/?board=$first_board), ingest metrics at http://127.0.0.1:$metrics_port/metrics"
fi

say "running the load: $rate events/s for $duration, $read_rate reads/s"
((marks)) && say "erasing $erase and banning $ban players during the load"
started=$(date +%s)
status=0
"$bin/loadgen" run --api "$api" --rate "$rate" --duration "$duration" --read-rate "$read_rate" \
    --erase "$erase" --ban "$ban" "${repeats[@]}" --report "$out/report.json" || status=$?
say "report: $out/report.json (load and verification took $(($(date +%s) - started))s)"
exit "$status"
