# cloture: each target a few cargo lines. `make help` lists them.
EDITION ?= recitation
FAULTY_ARGS ?=
# How make faulty-processes runs the Python test: `runner` (one process for the whole exploration, see
# docs/runner.md) or `command` (a new process per execution). Executions held by a `slow` fault wait for real
# until the deadline: DEADLINE (seconds) keeps them short, well above what an execution of the cinema takes.
TEST_MODE ?= runner
DEADLINE ?= 2
# The system `make faulty` explores: the cinema (cloture's own client and server) or the shop (axum,
# reqwest and tonic with cloture's layers).
SYSTEM ?= cinema
# cargo-llvm-cov leaves out `examples/` by default; the shop lives there, so its report keeps it and leaves
# out the rest of what the default leaves out (the toolchain, registry crates, build outputs, tests).
SHOP_COV_REPORT = --no-default-ignore-filename-regex --ignore-filename-regex '/rustc/|/\.cargo/|/\.rustup/|/target/|/tests/|/benches/'

# Written by scripts/ensure-tools.sh (LLVM_COV / LLVM_PROFDATA when Debian's LLVM is the fallback). When it
# is missing, make runs the rule below first and then reads it; a failure there only matters to the
# coverage targets, whose `tools` step reports it.
-include target/llvm-env.mk

target/llvm-env.mk:
	@scripts/ensure-tools.sh || true

ifeq ($(filter $(SYSTEM),cinema shop),)
$(error SYSTEM must be cinema or shop, not '$(SYSTEM)')
endif

ifeq ($(filter $(EDITION),recitation hardened),)
$(error EDITION must be recitation or hardened, not '$(EDITION)')
endif

EXTERNAL_TEST_FILE = tests/external/test_user_bookings.py
ifeq ($(TEST_MODE),runner)
EXTERNAL_TEST = --runner "env PYTHONPATH=clients/python/src python3 -m cloture.runner $(EXTERNAL_TEST_FILE):test_user_bookings"
else ifeq ($(TEST_MODE),command)
EXTERNAL_TEST = --functional-test "python3 $(EXTERNAL_TEST_FILE)"
else
$(error TEST_MODE must be runner or command, not '$(TEST_MODE)')
endif

.PHONY: help test lint coverage faulty faulty-processes tools bench bench-runner clean-coverage

help:
	@echo "make faulty    explore faults in the cinema (EDITION=recitation|hardened), reports in target/cloture/"
	@echo "make faulty SYSTEM=shop  explore faults in the shop (axum, reqwest, tonic), reports in target/cloture/shop/"
	@echo "make test      run the whole test suite"
	@echo "make coverage  run the functional test with coverage, HTML in target/llvm-cov/html/"
	@echo "make faulty-processes  the same exploration with the cinema as four processes and a Python test"
	@echo "                       (TEST_MODE=runner|command: one Python process, or one per execution)"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make bench     run the benchmarks recorded in BENCHMARKS.md"
	@echo "make bench-runner  per-execution time of the Python test: command per execution vs runner vs pytest runner"

test:
	@scripts/ensure-chromium.sh
	cargo test --workspace

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

tools:
	@scripts/ensure-tools.sh

clean-coverage: tools
	cargo llvm-cov clean --workspace

# The functional test alone, under coverage (the first half of the recitation).
coverage: clean-coverage
	cargo llvm-cov --no-report -p cinema-tests --test cinema -- --exact test_cinema_user_user_bookings::in_the_$(EDITION)_edition
	cargo llvm-cov report --html
	@scripts/coverage-summary.sh "$(EDITION)"

# The fault exploration under coverage (the second half): terminal summary, report.json, report.html,
# and cargo-llvm-cov's HTML refreshed to include the fault runs. Then the check that decoding the
# exploration's snapshots in process gives what llvm-profdata + llvm-cov give for them.
faulty: clean-coverage
ifeq ($(SYSTEM),shop)
	cargo llvm-cov run --no-report -p shop --bin shop-faulty -- explore $(FAULTY_ARGS)
	cargo llvm-cov report --html $(SHOP_COV_REPORT)
	@scripts/coverage-summary.sh shop
	CLOTURE_DECODE_OBJECT="$(CURDIR)/target/llvm-cov-target/debug/shop-faulty" \
	  CLOTURE_DECODE_PROFILES="$(CURDIR)/target/llvm-cov-target" CLOTURE_DECODE_SOURCES=examples/shop \
	  cargo test -q -p cloture-coverage --test decode_equals_llvm_cov -- --include-ignored --nocapture
	@echo "cloture report: target/cloture/shop/report.html"
else
	cargo llvm-cov run --no-report -p cinema-tests --bin cinema-faulty -- explore --edition $(EDITION) $(FAULTY_ARGS)
	cargo llvm-cov report --html
	@scripts/coverage-summary.sh "$(EDITION)"
	CLOTURE_DECODE_OBJECT="$(CURDIR)/target/llvm-cov-target/debug/cinema-faulty" \
	  CLOTURE_DECODE_PROFILES="$(CURDIR)/target/llvm-cov-target" \
	  cargo test -q -p cloture-coverage --test decode_equals_llvm_cov -- --include-ignored --nocapture
	@echo "cloture report: target/cloture/report.html"
endif

# The cinema as four separate processes built with coverage, the original functional test in Python, run by
# the persistent runner (TEST_MODE=command: as a command per execution), cloture driving both: reports in
# target/cloture/processes/. Then the check that
# decoding the services' snapshots in process (each alone and all merged) gives what the LLVM tools give.
faulty-processes: tools
	cargo build -p cloture --bin cloture
	env=$$(cargo llvm-cov show-env --export-prefix) && eval "$$env" && \
	  CARGO_TARGET_DIR=target/cov-ext cargo build -p cinema --bin cinema
	rm -f target/cov-ext/*.profraw
	sed -e 's#target/debug/cinema#target/cov-ext/debug/cinema#' \
	    -e 's#cinema users --port 5000#cinema users --port 5000 --edition $(EDITION)#' \
	    cinema/services.json > target/cov-services.json
	LLVM_PROFILE_FILE="$(CURDIR)/target/cov-ext/cinema-%p-%m.profraw" \
	  target/debug/cloture explore $(EXTERNAL_TEST) \
	  --services target/cov-services.json --catalog cinema/faults.catalog --coverage cinema/src/ \
	  --deadline $(DEADLINE) --report-dir target/cloture/processes $(FAULTY_ARGS)
	CLOTURE_DECODE_OBJECT="$(CURDIR)/target/cov-ext/debug/cinema" \
	  CLOTURE_DECODE_PROFILES="$(CURDIR)/target/cov-ext" \
	  cargo test -q -p cloture-coverage --test decode_equals_llvm_cov -- --include-ignored --nocapture
	@echo "cloture report: target/cloture/processes/report.html"

bench:
	cargo build --release -p cinema --bin cinema
	cargo run --release -p cinema-tests --bin cinema-bench

bench-runner:
	scripts/bench-runner.sh
