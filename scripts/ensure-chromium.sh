#!/usr/bin/env bash
# Installs Debian's Chromium when it is missing: the browser test of report.html opens it headless.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools: chromium is missing and this is not a Debian-like system: install chromium for the browser test" >&2
  exit 1
fi
echo "tools: installing chromium (Debian package) for the browser test"
as_root apt-get update -qq
as_root apt-get install -y -qq chromium >/dev/null
