#!/usr/bin/env bash
# Per-execution time of an external functional test, side by side in one run: the cinema as four processes
# (a dev build, no coverage) explored with the Python test as a command per execution, through the
# persistent runner (`python3 -m cloture.runner`), and through pytest's (`pytest --cloture-runner`, pytest
# installed into a virtual environment under target/ the first time), ROUNDS times each, interleaved.
# Executions held by a `slow` fault wait for real up to the deadline and are reported apart, as are the
# executions that (re)started the runner. Used for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
DEADLINE="${DEADLINE:-2}"
cargo build -q -p cloture --bin cloture -p cinema --bin cinema
venv=target/bench-runner-venv
if ! "$venv/bin/python" -c "import pytest" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pytest
fi
test=tests/external/test_user_bookings.py
with_source="env PYTHONPATH=clients/python/src"
pytest="$venv/bin/python -m pytest -q -p no:cacheprovider -p cloture.pytest_plugin --cloture-runner"
for round in $(seq "$ROUNDS"); do
  for mode in command runner pytest; do
    case "$mode" in
      command) how=(--functional-test "python3 $test") ;;
      runner) how=(--runner "$with_source python3 -m cloture.runner $test:test_user_bookings") ;;
      pytest) how=(--runner "$with_source $pytest $test::test_user_bookings") ;;
    esac
    target/debug/cloture explore "${how[@]}" --services cinema/services.json --catalog cinema/faults.catalog \
      --deadline "$DEADLINE" --report-dir "target/cloture/bench-runner/$mode-$round" --quiet
  done
done
python3 - "$ROUNDS" <<'PY'
import json, statistics, sys
rounds = int(sys.argv[1])
print(f"{'test':8} {'executions':>10} {'per execution (median, mean)':>30} {'first / restarts':>18} {'held by slow':>14} {'whole run':>10}")
for mode in ("command", "runner", "pytest"):
    usual, starts, held, totals, count = [], [], [], [], 0
    for round in range(1, rounds + 1):
        report = json.load(open(f"target/cloture/bench-runner/{mode}-{round}/report.json"))
        totals.append(report["summary"]["duration_ms"])
        previous_hung = True  # the first execution starts the runner
        for execution in report["executions"]:
            count += 1
            failure = (execution.get("failure") or {}).get("class")
            if failure in ("hang", "timeout"):
                held.append(execution["duration_ms"])
                previous_hung = True
            elif mode != "command" and previous_hung:
                starts.append(execution["duration_ms"])
                previous_hung = False
            else:
                usual.append(execution["duration_ms"])
                previous_hung = False
    usual_text = f"{statistics.median(usual):7.1f} ms, {statistics.mean(usual):7.1f} ms"
    starts_text = f"{statistics.mean(starts):7.1f} ms" if starts else "-"
    held_text = f"{statistics.mean(held):7.0f} ms" if held else "-"
    print(f"{mode:8} {count:>10} {usual_text:>30} {starts_text:>18} {held_text:>14} {statistics.mean(totals):7.0f} ms")
PY
