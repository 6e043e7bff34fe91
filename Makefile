# cloture: each target a few cargo lines. `make help` lists them.
EDITION ?= recitation
FAULTY_ARGS ?=

-include target/llvm-env.mk

ifeq ($(filter $(EDITION),recitation hardened),)
$(error EDITION must be recitation or hardened, not '$(EDITION)')
endif

.PHONY: help test lint coverage faulty tools bench clean-coverage

help:
	@echo "make faulty    explore faults in the cinema (EDITION=recitation|hardened), reports in target/cloture/"
	@echo "make test      run the whole test suite"
	@echo "make coverage  run the functional test with coverage, HTML in target/llvm-cov/html/"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make bench     run the benchmarks recorded in BENCHMARKS.md"

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
# and cargo-llvm-cov's HTML refreshed to include the fault runs.
faulty: clean-coverage
	cargo llvm-cov run --no-report -p cinema-tests --bin cinema-faulty -- explore --edition $(EDITION) $(FAULTY_ARGS)
	cargo llvm-cov report --html
	@scripts/coverage-summary.sh "$(EDITION)"
	@echo "cloture report: target/cloture/report.html"

bench:
	cargo build --release -p cinema --bin cinema
	cargo run --release -p cinema-tests --bin cinema-bench
