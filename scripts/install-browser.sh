#!/usr/bin/env bash
# Provides the browser the permissions page test drives (test/browser/): Debian's chromium at
# /usr/bin/chromium, from the machine's own package registry. puppeteer-core never downloads one.
#
# Idempotent and non-interactive: when /usr/bin/chromium exists it returns at once. Runs apt-get
# as root (CI and these machines), or through `sudo -n` elsewhere (a developer laptop), never
# asking for a password.
set -euo pipefail

readonly CHROMIUM=/usr/bin/chromium
export DEBIAN_FRONTEND=noninteractive

log() { echo "[install-browser] $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

if [ -x "${CHROMIUM}" ]; then
  log "${CHROMIUM} is installed; nothing to do"
  exit 0
fi
command -v apt-get >/dev/null || { log "ERROR: no apt-get here: install chromium so that ${CHROMIUM} exists"; exit 1; }
log "installing chromium (apt-get)"
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x "${CHROMIUM}" ] || { log "ERROR: chromium was installed but ${CHROMIUM} is missing"; exit 1; }
log "$("${CHROMIUM}" --version 2>/dev/null || echo chromium) installed at ${CHROMIUM}"
