#!/usr/bin/env bash
# Fuzzes the event decoder and the api's request extractors (fuzz/, cargo-fuzz with libFuzzer)
# for a bounded time each; a crash or a broken invariant fails with the input saved under
# fuzz/artifacts/<target>/. Installs cargo-fuzz from crates.io into ~/.local/leaderboard-tools
# on first use. Uses the nightly toolchain when installed (with AddressSanitizer); otherwise the
# stable one with RUSTC_BOOTSTRAP=1 and no sanitizer (libFuzzer's coverage needs -Z flags).
#
# Usage: scripts/fuzz.sh [SECONDS per target, default 60] [target...]
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$SCRIPT_DIR/.."
seconds=${1:-60}
shift $(($# >= 1 ? 1 : 0))
targets=("$@")
((${#targets[@]})) || targets=(event_decoder query_extractors)
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive number, got '$seconds'" >&2; exit 2; }

if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi
tools=${LB_TOOLS_DIR:-$HOME/.local/leaderboard-tools}
PATH=$tools/bin:$PATH
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io into $tools (once)" >&2
    env -u CARGO_TARGET_DIR cargo install --locked --root "$tools" cargo-fuzz@0.13.2 >&2
fi
command -v g++ >/dev/null 2>&1 || { echo "fuzz: libFuzzer needs a C++ compiler (apt-get install g++)" >&2; exit 1; }

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    run=(cargo +nightly fuzz run)
    how="nightly, AddressSanitizer"
else
    export RUSTC_BOOTSTRAP=1
    run=(cargo fuzz run --sanitizer none)
    how="stable with RUSTC_BOOTSTRAP=1, no sanitizer"
fi
for target in "${targets[@]}"; do
    corpus=target/fuzz-corpus/$target
    mkdir -p "$corpus"
    echo "fuzz: $target for ${seconds}s ($how)"
    log=target/fuzz-$target.log
    # The seeds are read, never written; new inputs go to the corpus under target/.
    status=0
    (cd fuzz && "${run[@]}" "$target" "../$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+.*(DONE|INITED)|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked|error(\[|:))' "$log" || true
    if ((status != 0)); then
        tail -40 "$log" >&2
        echo "fuzz: $target FAILED (the input is in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
done
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each"
