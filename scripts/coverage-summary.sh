#!/usr/bin/env bash
# Prints where cargo-llvm-cov's HTML report is and the line coverage in it of the service explored: the
# cinema's users service (argument: its edition), or the shop's gateway (argument: shop).
set -euo pipefail
cd "$(dirname "$0")/.."
edition=${1:-recitation}
echo
echo "coverage report: $(pwd)/target/llvm-cov/html/index.html"
if [ "$edition" = shop ]; then
  # As the Makefile's SHOP_COV_REPORT: the default filter would leave out examples/.
  cargo llvm-cov report --summary-only --no-default-ignore-filename-regex \
      --ignore-filename-regex '/rustc/|/\.cargo/|/\.rustup/|/target/|/tests/|/benches/' 2>/dev/null \
    | awk '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == "Lines") col = i }
        $1 ~ "gateway/[a-z]+\\.rs$" {
          printf "shop gateway %-28s lines: %s of %s covered (%s)\n", $1, $8 - $9, $8, $10
        }'
  exit 0
fi
cargo llvm-cov report --summary-only 2>/dev/null \
  | awk -v ed="$edition" '
      NR == 1 { for (i = 1; i <= NF; i++) if ($i == "Lines") col = i }
      $1 ~ ("users/" ed "\\.rs$") || $1 ~ "users/mod\\.rs$" {
        # Columns: Filename Regions Missed Cover Functions Missed Executed Lines Missed Cover ...
        printf "users service %-28s lines: %s of %s covered (%s)\n", $1, $8 - $9, $8, $10
      }'
