#!/usr/bin/env bash
# Installs what `make coverage` and `make faulty` need, when it is missing:
#   - cargo-llvm-cov (cargo install --locked)
#   - LLVM tools matching rustc's LLVM: rustup's llvm-tools component, else Debian's llvm-<major>
# Writes target/llvm-env.mk with LLVM_COV / LLVM_PROFDATA when the Debian fallback is used; the Makefile
# includes it. Prints one line per action; exits non-zero with a clear message when nothing works.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
env_file=target/llvm-env.mk
: > "$env_file"

if ! cargo llvm-cov --version >/dev/null 2>&1; then
  echo "tools: installing cargo-llvm-cov (about a minute)"
  cargo install cargo-llvm-cov --locked --quiet
fi

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
bin="$sysroot/lib/rustlib/$host/bin"

if [ -n "${LLVM_COV:-}" ] && [ -n "${LLVM_PROFDATA:-}" ]; then
  exit 0
fi
if [ -x "$bin/llvm-cov" ] && [ -x "$bin/llvm-profdata" ]; then
  exit 0
fi
if command -v rustup >/dev/null 2>&1 && rustup component add llvm-tools >/dev/null 2>&1 \
  && [ -x "$bin/llvm-cov" ]; then
  echo "tools: installed rustup component llvm-tools"
  exit 0
fi
# Debian fallback: the llvm-<major> package matching rustc's LLVM (never the system default llvm-cov).
if ! command -v "llvm-cov-$llvm_major" >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo_cmd" ] || command -v sudo >/dev/null 2>&1; }; then
    echo "tools: installing Debian package llvm-$llvm_major"
    # A fresh machine has no package lists yet. A failure falls through to the message below.
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm_major" >/dev/null || true
  fi
fi
if command -v "llvm-cov-$llvm_major" >/dev/null 2>&1; then
  {
    echo "export LLVM_COV := $(command -v "llvm-cov-$llvm_major")"
    echo "export LLVM_PROFDATA := $(command -v "llvm-profdata-$llvm_major")"
  } > "$env_file"
  echo "tools: using Debian's llvm-$llvm_major"
  exit 0
fi
echo "tools: no LLVM $llvm_major tools: run 'rustup component add llvm-tools' or install Debian's llvm-$llvm_major" >&2
exit 1
