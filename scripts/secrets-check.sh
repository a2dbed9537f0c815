#!/usr/bin/env bash
# Greps every log the test suite produced (the test runner's output, with every test's captured
# output, and the logs of Redis, the Sentinels and the broker) for secrets: the test Redis users'
# passwords (target/infra/redis-users.acl) and the canary password the secret tests run with.
# Exits non-zero, naming the file and line number (never the secret), when any is found.
#
# Usage: scripts/secrets-check.sh [LOG_DIR]   (default: $LB_STATE_DIR/logs)
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${LB_STATE_DIR:-$REPO_ROOT/target/infra}
logs=${1:-$state/logs}
secrets=(canary-password-6c1f9d)
if [[ -r $state/redis-users.acl ]]; then
    while read -r password; do secrets+=("$password"); done < <(sed -n 's/^user lb-[a-z]* .* >\([0-9a-f]*\)$/\1/p' "$state/redis-users.acl")
fi
((${#secrets[@]} > 1)) || { echo "secrets-check: no Redis user passwords in $state/redis-users.acl" >&2; exit 1; }
files=$(find "$logs" -type f | wc -l)
lines=$(cat "$logs"/* 2>/dev/null | wc -l)
found=0
for secret in "${secrets[@]}"; do
    while IFS=: read -r file line _; do
        echo "secrets-check: a secret is printed at $file:$line" >&2
        found=1
    done < <(grep -rnF -- "$secret" "$logs" || true)
done
if ((found)); then exit 1; fi
echo "secrets-check: ${#secrets[@]} secrets, none in $lines lines of $files log files under $logs"
