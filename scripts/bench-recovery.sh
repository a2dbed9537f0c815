#!/usr/bin/env bash
# Recovery time (RTO) and point (RPO) of a wiped Redis, measured end to end on this machine:
#   1. a topic filled with EVENTS events of PLAYERS players (near-uniform activity, so the board
#      holds almost every player), drained by one ingest worker into a Redis of this run's own;
#   2. `lb-admin snapshot`, then TAIL more events (written after the snapshot), drained;
#   3. FLUSHALL; the worker notices (its /readyz says store_lost); `lb-admin restore` loads the
#      snapshot and replays the tail; the worker resumes. RTO = wipe to worker ready again;
#   4. FLUSHALL again; `lb-admin rebuild` replays the whole topic. RTO likewise.
#   Before 3, a rollback: `SAVE`, TAIL more events drained, then Redis killed (-9) and restarted on
#   the saved file; the worker notices (its applied offsets are behind the committed ones) and
#   `lb-admin catch-up` replays what Redis forgot, from its own applied offsets. RTO likewise.
# After each recovery the boards (`lb-admin boards --json`: totals, shard sizes and score ranges)
# must equal those before the wipe; the script fails otherwise.
#
# Usage: scripts/bench-recovery.sh   (env: PLAYERS=10000000 EVENTS=30000000 TAIL=1000000
#                                      LAYOUT=hash:4 PARTITIONS=6)
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
# shellcheck source=lib/bench.sh
source "$SCRIPT_DIR/lib/bench.sh"
players=${PLAYERS:-10000000} events=${EVENTS:-30000000} tail=${TAIL:-1000000}
layout=${LAYOUT:-hash:4} partitions=${PARTITIONS:-6}
bench_setup recovery -p ingest -p loadgen -p admin
command -v redis-server >/dev/null || { echo "redis-server missing: run scripts/infra.sh up once" >&2; exit 1; }
port=$(free_port)
bench_background redis-server --port "$port" --save '' --appendonly no --dir "$PWD/$out" --logfile "$PWD/$out/redis.log"
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start (log: $out/redis.log)" >&2; exit 1; }
export LB_REDIS_URL=redis://127.0.0.1:$port LB_LAYOUT=$layout
export LB_LOADGEN_PLAYERS=$players LB_LOADGEN_ZIPF=0.01
metrics_port=$(free_port)
admin() { target/release/lb-admin "$@"; }
now() { date +%s.%N; }
# wait_ready WANT: polls the worker's /readyz until it answers WANT (200, or 503 with store_lost).
wait_ready() {
    for _ in $(seq 1 6000); do
        local body status
        body=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$metrics_port/readyz" || true)
        status=${body##*$'\n'}
        if [[ $1 == 200 && $status == 200 ]] || [[ $1 == lost && $body == *store_lost* ]]; then return 0; fi
        sleep 0.05
    done
    echo "the worker never became $1" >&2
    return 1
}
boards() { admin --json boards | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }

target/release/loadgen topics --partitions "$partitions" --dlq-partitions 1
echo "== filling $events events of up to $players players"
target/release/loadgen fill --count "$events"
start_ingest LB_INGEST_METRICS_ADDR=127.0.0.1:$metrics_port
target/release/loadgen drain --expect "$events" --timeout 1800s
total=$(admin --json boards | python3 -c 'import json,sys; print(sum(b["total"] for b in json.load(sys.stdin)))')
echo "board holds $total players; redis used_memory: $(redis-cli -p "$port" info memory | grep -m1 used_memory_human)"

echo "== snapshot"
admin --json snapshot --out "$out/all.lbsnap" >"$out/snapshot.json"
echo "snapshot: $(field "$out/snapshot.json" "['seconds']") s, $(du -h "$out/all.lbsnap" | cut -f1)B for $(field "$out/snapshot.json" "['totals']['players']") players"
target/release/loadgen fill --count "$tail"
target/release/loadgen drain --expect $((events + tail)) --timeout 600s
before=$(boards)

echo "== a rollback: SAVE, $tail more events, kill -9, restart on the saved file, then catch-up"
redis-cli -p "$port" save >/dev/null
target/release/loadgen fill --count "$tail"
target/release/loadgen drain --expect $((events + 2 * tail)) --timeout 600s
before=$(boards)
pid=$(redis-cli -p "$port" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
rolled=$(now)
{ kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true
bench_background redis-server --port "$port" --save '' --appendonly no --dir "$PWD/$out" --logfile "$PWD/$out/redis.log"
for _ in $(seq 1 600); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
wait_ready lost
noticed=$(now)
admin --json catch-up --layout "$layout" >"$out/catch-up.json"
wait_ready 200
caught=$(now)
[[ $(boards) == "$before" ]] || { echo "caught-up boards differ from the boards before the rollback" >&2; exit 1; }
python3 - "$out/catch-up.json" "$rolled" "$noticed" "$caught" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); rolled, noticed, ready = map(float, sys.argv[2:5])
print(f"rollback: detected {noticed - rolled:.1f} s after the kill (restart and load included); replayed "
      f"{r['replayed_records']} records in {r['replay_seconds']:.1f} s; worker ready {ready - rolled:.1f} s after the "
      f"kill (RTO); boards equal to before the rollback (RPO 0)")
EOF

echo "== FLUSHALL, then restore + replay"
wiped=$(now)
redis-cli -p "$port" flushall >/dev/null
wait_ready lost
noticed=$(now)
admin --json restore --file "$out/all.lbsnap" >"$out/restore.json"
wait_ready 200
restored=$(now)
[[ $(boards) == "$before" ]] || { echo "restored boards differ from the boards before the wipe" >&2; exit 1; }
python3 - "$out/restore.json" "$wiped" "$noticed" "$restored" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); wiped, noticed, ready = map(float, sys.argv[2:5])
print(f"restore: detected after {noticed - wiped:.1f} s; loaded {r['loaded']['players']} players in {r['load_seconds']:.1f} s; "
      f"replayed {r['replayed_records']} records in {r['replay_seconds']:.1f} s; worker ready {ready - wiped:.1f} s after the wipe (RTO); "
      f"boards equal to before the wipe (RPO 0)")
EOF

echo "== FLUSHALL, then rebuild from Kafka alone"
wiped=$(now)
redis-cli -p "$port" flushall >/dev/null
wait_ready lost
noticed=$(now)
admin --json rebuild --layout "$layout" --rules-from "$out/all.lbsnap" >"$out/rebuild.json"
wait_ready 200
rebuilt=$(now)
[[ $(boards) == "$before" ]] || { echo "rebuilt boards differ from the boards before the wipe" >&2; exit 1; }
python3 - "$out/rebuild.json" "$wiped" "$noticed" "$rebuilt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); wiped, noticed, ready = map(float, sys.argv[2:5])
rate = r['replayed_records'] / max(r['replay_seconds'], 1e-9)
print(f"rebuild: detected after {noticed - wiped:.1f} s; replayed {r['replayed_records']} records in {r['replay_seconds']:.1f} s "
      f"({rate:,.0f} records/s); worker ready {ready - wiped:.1f} s after the wipe (RTO); boards equal to before the wipe (RPO 0)")
EOF
echo "figures and logs: $out"
