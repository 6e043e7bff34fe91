#!/usr/bin/env bash
# Compares search orders under coverage: for each user and order, runs the exploration of the recitation
# edition under cargo llvm-cov and prints how many executions each needed to reach its final users-service
# coverage and to find every vulnerability. Used for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh
cargo build -q -p cloture --bin cloture
for user in chris_rivers dwight_schrute; do
  for order in coverage bfs dfs; do
    dir="target/cloture/orders/$user-$order"
    cargo llvm-cov run -q --no-report -p cinema-tests --bin cinema-faulty -- \
      explore --edition recitation --user "$user" --order "$order" --report-dir "$dir" --quiet
    printf '%-15s ' "$user"
    target/debug/cloture milestones "$dir/report.json" cinema/src/users/
  done
done
