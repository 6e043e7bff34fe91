#!/usr/bin/env bash
# The CPU cost of picking candidates: the default (coverage) order against breadth-first on a
# 3,000-execution exploration without coverage data (hardened edition, dwight_schrute, up to four faults,
# no reduction), rounds of each order interleaved. Prints user CPU seconds per run and the ratio.
# Usage: scripts/bench-scoring.sh [ROUNDS] [PROFILE]   (PROFILE: dev or release; default 3, release)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
profile=${2:-release}
cargo build -q --profile "$profile" -p cinema-tests --bin cinema-faulty
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
program="target/$dir/cinema-faulty"
declare -A total=([coverage]=0 [bfs]=0)
for round in $(seq "$rounds"); do
  for order in coverage bfs; do
    seconds=$( { /usr/bin/time -f '%U' "$program" explore --edition hardened --user dwight_schrute --max-faults 4 \
      --no-reduce --order "$order" --max-executions 3000 --quiet --report-dir "target/cloture/scoring-$order" \
      >/dev/null; } 2>&1 | tail -1)
    echo "round $round  $order  ${seconds} s user CPU"
    total[$order]=$(awk -v a="${total[$order]}" -v b="$seconds" 'BEGIN { print a + b }')
  done
done
awk -v c="${total[coverage]}" -v b="${total[bfs]}" 'BEGIN { printf "coverage / bfs: %.2fx\n", c / b }'
