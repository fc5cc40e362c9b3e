#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests (test/browser.test.ts).
# Idempotent: when it is there already this does nothing. Never downloads a browser build of its own
# (playwright-core drives the system Chromium). Exit 0 = Chromium is there; exit 1 = it is not, and why.
#   usage: bash scripts/ensure-chromium.sh        (CHROMIUM_PATH overrides the binary checked)
set -u
BIN="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ -x "$BIN" ]; then
  exit 0
fi

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

if [ "${EUID:-1}" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi

if [ "$SUDO" != "none" ] && command -v apt-get >/dev/null 2>&1; then
  say "installing Debian's chromium (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  if $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    if [ -x "$BIN" ]; then
      say "installed: $("$BIN" --version 2>/dev/null || echo "$BIN")"
      exit 0
    fi
    say "apt-get finished but $BIN is still missing"
  else
    say "apt-get install chromium failed"
  fi
fi

printf '%s\n' \
  "ensure-chromium: Chromium is needed at $BIN for the browser tests (test/browser.test.ts) and could not be installed here." \
  "  Install it with (as root, on Debian/Ubuntu):" \
  "      apt-get update && apt-get install -y chromium" \
  "  or point CHROMIUM_PATH at an existing Chromium or Chrome binary." >&2
exit 1
