#!/usr/bin/env bash
# Installs Debian's Chromium when it is missing: the browser test of report.html opens /usr/bin/chromium
# headless.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools: /usr/bin/chromium is missing and this is not a Debian-like system: install chromium for the browser test" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1; then
  as_root() { sudo "$@"; }
else
  echo "tools: /usr/bin/chromium is missing and installing it needs root: run 'apt-get install chromium' as root" >&2
  exit 1
fi
echo "tools: installing chromium (Debian package) for the browser test"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
