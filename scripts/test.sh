#!/usr/bin/env bash
# Runs the whole test suite against real local infrastructure (scripts/infra.sh):
#   1. scripts/infra.sh up (installs what is missing, starts Redis, the Redis Cluster, the broker)
#   2. sources $LB_STATE_DIR/env (LB_REDIS_URL, LB_REDIS_CLUSTER_URLS, LB_KAFKA_BROKERS, ...)
#   3. cargo nextest run (or cargo test when nextest is missing), then the doc tests; with the
#      `ingest/failpoints` feature, so the fault tests can stop a worker at an exact step
#   4. scripts/compose-check.sh: docker-compose.yml against the Compose Specification (one check),
#      scripts/compose-run-check.sh: every compose service started from its own entrypoint,
#      command and health check on the local binaries, the Redis Cluster formed (one),
#      scripts/rules-check.sh: the Prometheus config and alert rules with their promtool tests (one),
#      scripts/schemathesis.sh: schemathesis with every check against a seeded api (one),
#      scripts/producers-check.sh: the Python and Node producer examples, signed, through ingest
#      and the api, as docs/producers.md runs them (one),
#      scripts/fuzz.sh: the cargo-fuzz targets for a bounded time (one),
#      and scripts/secrets-check.sh: no password of the run in any log it produced (one)
#   5. scripts/infra.sh down, unless the infrastructure was already up before this script
# Exits non-zero if any test (or the build, or the infrastructure) failed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO_ROOT"

export LB_STATE_DIR=${LB_STATE_DIR:-$REPO_ROOT/target/infra}
LOG_DIR=$LB_STATE_DIR/logs

say() { printf '[test] %s\n' "$*" >&2; }
infra() { bash "$SCRIPT_DIR/infra.sh" "$@"; }

if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

was_up=0
final_line= # printed last, after `infra down`, so the run's closing line is the test totals
if infra status >/dev/null 2>&1; then
    was_up=1
    say "infrastructure already up: leaving it running afterwards"
fi
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if ((was_up == 0)); then infra down || say "infra down failed"; fi
    if [[ -n $final_line ]]; then echo "$final_line"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

infra up
# shellcheck source=/dev/null
source "$LB_STATE_DIR/env"
mkdir -p "$LOG_DIR"

# Sums "N passed", "N failed", ... over lines; prints "passed failed skipped".
count() { # file regex-for-lines
    sed 's/\x1b\[[0-9;]*m//g' "$1" 2>/dev/null | grep -E "$2" | awk '
        { for (i = 2; i <= NF; i++) {
              w = $i; gsub(/[;,]/, "", w)
              if (w == "passed") p += $(i-1)
              else if (w == "failed") f += $(i-1)
              else if (w == "skipped" || w == "ignored") s += $(i-1)
              else if (w == "timed" && $(i+1) ~ /^out/) f += $(i-1)
          } }
        END { printf "%d %d %d\n", p, f, s }'
}

features=(--features ingest/failpoints,leaderboard-store/failpoints)
status=0
tests_log=$LOG_DIR/tests.log
doc_log=$LOG_DIR/doctests.log
if cargo nextest --version >/dev/null 2>&1; then
    say "running: cargo nextest run --workspace ${features[*]} --no-fail-fast (RUST_LOG=${RUST_LOG:-info})"
    # Every test's logs are kept (in-process workers and apis log when RUST_LOG is set), so
    # scripts/secrets-check.sh reads every line the suite printed.
    RUST_LOG=${RUST_LOG:-info} cargo nextest run --workspace "${features[@]}" --no-fail-fast --no-tests=warn \
        --success-output final 2>&1 | tee "$tests_log" >/dev/null || status=$?
    grep -E '^ +(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT|LEAK|SKIP)|^ *Summary|^error' "$tests_log" | grep -v '^ *PASS' || true
    # Why each failing test failed: the panic in its output and the lines after it (the
    # assertion's message), so a CI record that keeps only this part still says why.
    sed 's/\x1b\[[0-9;]*m//g' "$tests_log" | awk '
        /^ +(FAIL|SIGSEGV|SIGABRT|TIMEOUT) \[/ { failing = 1; print; next }
        /^ +(PASS|START|SLOW|SKIP|LEAK) \[|^ *Summary|^ *Cancelling/ { failing = 0 }
        failing && /panicked at/ { left = 5 }
        failing && left > 0 { print; left-- }' | head -80
    say "running: cargo test --workspace --doc (nextest does not run doc tests)"
    doc_status=0
    cargo test --workspace "${features[@]}" --doc 2>&1 | tee "$doc_log" || doc_status=$?
    if ((doc_status != 0)) && grep -q 'no library targets found' "$doc_log"; then
        doc_status=0 # a workspace of binaries only has no doc tests
    fi
    ((status != 0)) || status=$doc_status

    read -r p1 f1 s1 < <(count "$tests_log" '^ *Summary \[')
    read -r p2 f2 s2 < <(count "$doc_log" '^test result:')
    echo
    echo "==== summary ===="
    grep -E '^ *Summary \[' "$tests_log" | sed 's/^ *//' || echo "nextest: no summary line (build failure?), see $tests_log"
    echo "doc tests: $p2 passed, $f2 failed, $s2 ignored"
    passed=$((p1 + p2)) failed=$((f1 + f2)) skipped=$((s1 + s2))
else
    say "cargo-nextest not found; running: cargo test --workspace"
    cargo test --workspace "${features[@]}" 2>&1 | tee "$tests_log" || status=$?
    read -r passed failed skipped < <(count "$tests_log" '^test result:')
    echo
    echo "==== summary ===="
fi

say "running: scripts/compose-check.sh (docker-compose.yml as docker compose config would check it)"
if bash "$SCRIPT_DIR/compose-check.sh"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)) status=1
fi
say "running: scripts/compose-run-check.sh (every compose service from its own command, on local binaries)"
if bash "$SCRIPT_DIR/compose-run-check.sh" >"$LOG_DIR/compose-run-check.log" 2>&1; then
    tail -1 "$LOG_DIR/compose-run-check.log"
    passed=$((passed + 1))
else
    grep -v ': running: pid' "$LOG_DIR/compose-run-check.log" | tail -40
    failed=$((failed + 1)) status=1
fi
say "running: scripts/rules-check.sh (promtool check and test of the alert rules)"
if bash "$SCRIPT_DIR/rules-check.sh"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)) status=1
fi
say "running: scripts/schemathesis.sh (schemathesis, every check, against a seeded api)"
if bash "$SCRIPT_DIR/schemathesis.sh" "${LB_SCHEMATHESIS_SECONDS:-90}" >"$LOG_DIR/schemathesis.log" 2>&1; then
    grep -E '^ *(Test cases|[0-9]+ generated)|passed|failures' "$LOG_DIR/schemathesis.log" | tail -3 || true
    passed=$((passed + 1))
else
    tail -60 "$LOG_DIR/schemathesis.log"
    failed=$((failed + 1)) status=1
fi
say "running: scripts/producers-check.sh (the Python and Node producers, signed, end to end)"
if bash "$SCRIPT_DIR/producers-check.sh"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)) status=1
fi
say "running: scripts/fuzz.sh (cargo fuzz: the event decoder and the request extractors)"
if bash "$SCRIPT_DIR/fuzz.sh" "${LB_FUZZ_SECONDS:-30}"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)) status=1
fi
say "running: scripts/secrets-check.sh (no password of the run in any of its logs)"
if bash "$SCRIPT_DIR/secrets-check.sh" "$LOG_DIR"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)) status=1
fi

if ((status != 0 && failed == 0)); then
    echo "FAILED: the test run exited with status $status (build failure or crash?); logs in $LOG_DIR"
fi
# Plain closing line: totals over nextest and doc tests (printed again by the EXIT trap).
final_line="tests: $passed passed, $failed failed, $skipped skipped"
echo "$final_line"
exit "$status"
