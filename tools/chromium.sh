#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (idempotent).
# Prints the path of the browser. Installs with apt-get only when missing and running as root;
# otherwise says what to run and exits non-zero.
set -euo pipefail

for candidate in "${CLEARHOUSE_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
        echo "$candidate"
        exit 0
    fi
done

if [[ "$(id -u)" != 0 ]]; then
    echo "chromium is missing: run 'sudo apt-get install -y chromium' (Debian) or set CLEARHOUSE_CHROMIUM" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
echo /usr/bin/chromium
