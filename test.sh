#!/usr/bin/env bash
# Runs every test suite — the .NET tests (SQLite, and PostgreSQL clusters the tests start themselves), the Node
# interop suite that drives the real `faye` and `cometd` clients against a running Tidings server, the cluster suite
# (three nodes on PostgreSQL behind nginx), the browser suite, and the short form of the chaos suite (fuzzing,
# authorization attacks, kill -9 durability, exhaustion, convergence under faults; bench/chaos.sh runs the long
# form) — and ends with one "N passed, N failed" line.
# Installs what it needs on a fresh Debian machine (Node.js, npm packages, chromium, postgresql, nginx).
set -uo pipefail
cd "$(dirname "$0")"
root=$(pwd)
artifacts="$root/artifacts/test-results"
rm -rf "$artifacts"
mkdir -p "$artifacts"

need_apt=()
command -v dotnet >/dev/null || { echo "The .NET 10 SDK is required (dotnet not found)." >&2; exit 2; }
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# PostgreSQL's server binaries (the tests run initdb/pg_ctl themselves on loopback ports) and nginx (the cluster tests).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "Installing ${need_apt[*]} ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Node suites: each folder under tests/ with a package.json runs under node's test runner.
node_suites=()
for dir in tests/interop tests/browser tests/cluster tests/chaos; do
  [ -f "$dir/package.json" ] && node_suites+=("$dir")
done

if [ -d tests/browser ] && [ ! -x /usr/bin/chromium ]; then
  echo "Installing chromium for the browser tests ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Before the .NET tests: the client tests' convergence test runs the JS client on tests/browser's faye.
echo "== npm packages"
for dir in "${node_suites[@]}"; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || { echo "npm ci failed in $dir" >&2; exit 2; }
done

echo "== build"
dotnet build Tidings.slnx -c Release -nologo -clp:ErrorsOnly || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

echo "== .NET tests"
# A hung test fails its run (with a dump) instead of stalling CI.
dotnet test Tidings.slnx -c Release --no-build -nologo --blame-hang-timeout 5min \
  --logger "trx" --results-directory "$artifacts/dotnet" --logger "console;verbosity=minimal"
for trx in "$artifacts"/dotnet/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done
if ! ls "$artifacts"/dotnet/*.trx >/dev/null 2>&1; then
  echo "No .NET test results were written." >&2
  failed=$((failed + 1))
fi

# The last "ℹ <what> N" line of a spec-reporter log (colour codes removed).
summary() { sed 's/\x1b\[[0-9;]*m//g' "$2" | sed -n "s/^ℹ $1 \([0-9]*\)\$/\1/p" | tail -1; }

export TIDINGS_DEMO_DLL="$root/samples/Demo/bin/Release/net10.0/Tidings.Demo.dll"
for dir in "${node_suites[@]}"; do
  name=$(basename "$dir")
  echo "== Node tests: $dir"
  # Each test has a time limit, the runner exits when the tests are done even if a client library
  # still holds a timer, and the whole suite has a hard limit: a hang is a failure, never a stall.
  # (--test-force-exit ends the process before a file reporter flushes, so the summary is read from
  # the spec reporter's output, which is also kept as an artifact.)
  (cd "$dir" && timeout --kill-after=30s 20m node --test --test-concurrency=1 \
    --test-timeout=180000 --test-force-exit --test-reporter=spec ./*.test.mjs) 2>&1 | tee "$artifacts/$name.log"
  p=$(summary pass "$artifacts/$name.log")
  f=$(summary fail "$artifacts/$name.log")
  c=$(summary cancelled "$artifacts/$name.log")
  f=$(( ${f:-0} + ${c:-0} )) # a test cancelled by its time limit (or its parent's) failed
  if [ -z "$p" ]; then
    echo "The $name suite wrote no summary." >&2
    failed=$((failed + 1))
  fi
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
