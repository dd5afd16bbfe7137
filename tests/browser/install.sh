#!/usr/bin/env bash
# What the browser tests (tests/it/browser.rs) need, installed from the
# package registries when missing: Debian's chromium and chromium-driver
# (apt; nothing downloads a browser at run time) and axe-core from npm
# (test-only) into the directory given ($1, default target/npm).
# `.ci/run` calls it up front; the tests call it when something is missing.
set -euo pipefail
NPM_DIR="${1:-target/npm}"
AXE_VERSION="4.14.1"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
pkgs=()
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
[ -x /usr/bin/chromedriver ] || pkgs+=(chromium-driver)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing ${pkgs[*]} (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if [ ! -f "$NPM_DIR/node_modules/axe-core/axe.min.js" ] \
   || ! grep -q "\"version\": \"$AXE_VERSION\"" "$NPM_DIR/node_modules/axe-core/package.json"; then
  echo "installing axe-core@$AXE_VERSION (npm) into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-save --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
fi
/usr/bin/chromium --version 2>/dev/null
/usr/bin/chromedriver --version
