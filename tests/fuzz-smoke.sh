#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz targets (fuzz/, nightly, libFuzzer) and runs each one
# for a short, bounded time over its committed seeds. Fails on any crash, failed invariant,
# leak or timeout. The long runs and their figures are in docs/fuzzing.md.
#
#   bash tests/fuzz-smoke.sh              # every target, 15 s each
#   FUZZ_SECONDS=60 bash tests/fuzz-smoke.sh policy dns_answer
#
# Needs the nightly toolchain (`rustup toolchain install nightly`). cargo-fuzz is installed into
# ~/.cache/pvtapi/tools/cargo-fuzz when missing. Builds go to ~/.cache/pvtapi/fuzz-target (never
# the main target directory); the corpus a run grows is kept in ~/.cache/pvtapi/fuzz-corpus, so
# fuzz/corpus holds only the committed seeds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PVTAPI_CACHE="${PVTAPI_CACHE:-$HOME/.cache/pvtapi}"
TOOLS="$PVTAPI_CACHE/tools/cargo-fuzz"
export CARGO_TARGET_DIR="$PVTAPI_CACHE/fuzz-target"
export PATH="$TOOLS/bin:$PATH"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-15}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(policy invoke_answer probe_report invoke_url dns_answer)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz into $TOOLS" >&2
    cargo install cargo-fuzz --locked --root "$TOOLS"
fi

cd "$ROOT/fuzz"
cargo +nightly fuzz build

for target in "${TARGETS[@]}"; do
    seeds="$ROOT/fuzz/corpus/$target"
    work="$PVTAPI_CACHE/fuzz-corpus/$target"
    if [ ! -d "$seeds" ]; then
        echo "fuzz-smoke: no seeds for $target in $seeds" >&2
        exit 1
    fi
    mkdir -p "$work"
    echo "fuzz-smoke: $target for ${SECONDS_PER_TARGET}s" >&2
    # New inputs go to the first directory (outside the repository); the seeds are only read.
    # A crash, a failed assertion, a leak or a 10 s input fails the run; the reproducer lands
    # in fuzz/artifacts/$target/.
    if ! cargo +nightly fuzz run "$target" "$work" "$seeds" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$work.log" 2>&1; then
        tail -n 60 "$work.log" >&2
        echo "fuzz-smoke: $target FAILED (log: $work.log, reproducer: fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$work.log" | sed "s/^/  $target /" >&2
done
echo "fuzz-smoke: ${#TARGETS[@]} targets, no crash" >&2
