#!/usr/bin/env bash
# What N inner-wildcard patterns cost a publish, in process. Usage: bench/InnerWildcards/run.sh [publishes]
set -euo pipefail
cd "$(dirname "$0")"
dotnet run -c Release -- "${1:-200000}"
