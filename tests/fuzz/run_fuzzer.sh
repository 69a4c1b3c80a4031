#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time: run_fuzzer.sh BINARY SEED_DIR WORK_DIR SECONDS
# [libFuzzer flags...]. New inputs go to WORK_DIR/corpus (the seed corpus in the repo is only
# read), a crashing input to WORK_DIR/artifacts/. Exits non-zero on a crash, a leak, a sanitizer
# report, a timeout of one input or a failed property, and prints how to reproduce it.
set -euo pipefail
binary=$1 seeds=$2 work=$3 seconds=$4
shift 4
if [[ ! -x "$binary" ]]; then
  echo "run_fuzzer.sh: $binary is not built (the fuzz build is build/fuzz; see 'Fuzzing' in README.md)" >&2
  exit 1
fi
mkdir -p "$work/corpus" "$work/artifacts"
status=0
"$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run_fuzzer.sh: $(basename "$binary") failed (exit $status). Reproduce with:" >&2
  for input in "$work"/artifacts/*; do
    [[ -f "$input" ]] && echo "  $binary $input" >&2
  done
fi
exit $status
