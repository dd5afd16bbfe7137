#!/usr/bin/env bash
# Schemathesis against a running `guildhall serve --demo`, logged in as the
# demo requester. Fails on any server error (5xx), any response that does not
# match its documented schema, status code or content type.
#
# Starts the debug binary (built by `cargo build`) on a free loopback port
# with its data in a temporary directory, and stops it on exit. Nothing but
# 127.0.0.1 is contacted (PyPI aside, once, to install schemathesis into
# target/pydeps-schemathesis).
#
# Environment:
#   GUILDHALL_BIN             binary to run (default: $CARGO_TARGET_DIR or target, /debug/guildhall)
#   SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase (default 25)
#   SCHEMATHESIS_SEED         seed (default: fixed, so CI runs are repeatable)
#   SCHEMATHESIS_REPORT_DIR   where the JUnit report goes (default target/schemathesis-report)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

version=4.32.5
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir="$root/$target_dir" ;; esac
pydeps="$target_dir/pydeps-schemathesis"
bin=${GUILDHALL_BIN:-$target_dir/debug/guildhall}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}
seed=${SCHEMATHESIS_SEED:-20261201}
report_dir=${SCHEMATHESIS_REPORT_DIR:-$target_dir/schemathesis-report}

if ! PYTHONPATH="$pydeps" python3 -c "import schemathesis, sys; sys.exit(schemathesis.__version__ != '$version')" 2>/dev/null; then
  echo "installing schemathesis $version into $pydeps"
  rm -rf "$pydeps"
  python3 -m pip install --quiet --disable-pip-version-check --target "$pydeps" "schemathesis==$version"
fi
[ -x "$bin" ] || { echo "no guildhall binary at $bin (run cargo build first)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/guildhall-schemathesis.XXXXXX")
server=
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

# A clean environment: no GUILDHALL_* from the caller (no PostgreSQL URL, no
# Stripe key, no LLM endpoint), the sandbox gateway, a data directory of its own.
env -i PATH="$PATH" HOME="$work" \
  GUILDHALL_DATA_DIR="$work/data" \
  GUILDHALL_BIND="127.0.0.1:$port" \
  GUILDHALL_PAYMENT_GATEWAY=sandbox \
  GUILDHALL_STRIPE_WEBHOOK_SECRET=whsec_schemathesis_only \
  GUILDHALL_REPLY_DOMAIN=reply.example.org \
  GUILDHALL_INBOUND_EMAIL_SECRET=inbound-secret-schemathesis-only \
  GUILDHALL_GITHUB_WEBHOOK_SECRET=github-secret-schemathesis-only \
  GUILDHALL_ACCESS_TOKEN_TTL_SECS=3600 \
  GUILDHALL_LOG=warn \
  "$bin" serve --demo >"$work/serve.log" 2>&1 &
server=$!

for _ in $(seq 1 100); do
  curl -sf "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; echo "guildhall serve exited" >&2; exit 1; }
  sleep 0.2
done
curl -sf "$base/healthz" >/dev/null || { cat "$work/serve.log" >&2; echo "guildhall serve did not start" >&2; exit 1; }

password=$(sed -n 's/.*password for every demo account: *//p' "$work/serve.log" | head -n1)
password=${password:-guildhall-demo-password}
token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"requester@demo.guildhall.dev\",\"password\":\"$password\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
[ -n "$token" ] || { echo "demo login failed" >&2; exit 1; }
echo "guildhall serve --demo on $base; logged in as requester@demo.guildhall.dev"

mkdir -p "$report_dir"
status=0
# Run from the temporary directory: schemathesis and hypothesis read and
# write files in the working directory. Any proxy but loopback is refused.
checks=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance
echo "+ schemathesis run $base/api/v1/openapi.json --header 'Authorization: Bearer <demo requester token>'" \
  "--checks $checks --max-examples $max_examples --seed $seed --request-timeout 30 --generation-database none"
(
  cd "$work"
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1 \
  http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1 \
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$pydeps:$root/tests/schemathesis" python3 -m schemathesis.cli \
    --config-file "$root/tests/schemathesis/schemathesis.toml" \
    run "$base/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    --output-sanitize true \
    --report junit --report-dir "$report_dir"
) || status=$?

if grep -q "panicked\|request failed with an internal error" "$work/serve.log"; then
  echo "the server logged internal errors:" >&2
  grep -B2 -A5 "panicked\|request failed with an internal error" "$work/serve.log" | head -n 60 >&2
  status=1
fi
exit "$status"
