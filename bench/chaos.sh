#!/usr/bin/env bash
# The chaos suite's long form (tests/chaos with CHAOS_LONG=1): 12,000 fuzz inputs, 25 kill -9 rounds with 8 writers,
# a minute of exhaustion with latency measured, 30 faye clients converging through a cutting proxy with 4 kills.
# Prints the machine and every figure line ("# ...") for docs/RELIABILITY.md; the full log goes to
# artifacts/chaos-long.log. CHAOS_SEED=<n> replays a run; arguments pick test files (default: all).
#
#   bench/chaos.sh                 # everything, about 25 minutes on 2 cores
#   bench/chaos.sh fuzz.test.mjs   # one part
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dotnet build samples/Demo -c Release -nologo -clp:ErrorsOnly || exit 1
(cd tests/chaos && npm ci --no-audit --no-fund --loglevel=error) || exit 1
mkdir -p artifacts
log="$root/artifacts/chaos-long.log"
export TIDINGS_DEMO_DLL="$root/samples/Demo/bin/Release/net10.0/Tidings.Demo.dll"
export CHAOS_LONG=1
files=("$@")
[ ${#files[@]} -eq 0 ] && files=(fuzz.test.mjs auth.test.mjs crash.test.mjs exhaustion.test.mjs convergence.test.mjs)
{
  echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(. /etc/os-release; echo "$PRETTY_NAME"), .NET $(dotnet --version), Node $(node --version)"
  echo "# commit: $(git rev-parse --short HEAD)"
} | tee "$log"
(cd tests/chaos && node --test --test-concurrency=1 --test-timeout=1800000 --test-force-exit --test-reporter=spec "${files[@]}") 2>&1 | tee -a "$log" | grep -E '^(# |✔|✖|ℹ (pass|fail))'
