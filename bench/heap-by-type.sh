#!/usr/bin/env bash
# Where an idle session's memory goes: live managed objects by type, per session, for Tidings and the raw
# WebSocket ceiling. For each target: open SMALL then LARGE idle sessions (the load tool's idle scenario, held
# open for a while), take a GC heap snapshot of the server with dotnet-trace while they are open, and print
# (snapshot LARGE - snapshot SMALL) / (LARGE - SMALL) by type. Needs dotnet-trace (dotnet tool install -g dotnet-trace).
#   bench/heap-by-type.sh                 tidings and ceiling, 1,000 and 3,000 sessions
#   TARGETS=tidings SMALL=500 LARGE=2500 bench/heap-by-type.sh
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$bench")
small=${SMALL:-1000} large=${LARGE:-3000} top=${TOP:-30}
trace=${DOTNET_TRACE:-$HOME/.dotnet/tools/dotnet-trace}
out="$bench/results/heap-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"

started=()
cleanup() { for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

dotnet build "$repo/samples/Demo" -c Release -nologo -clp:ErrorsOnly -v quiet
dotnet build "$bench/LoadTool" -c Release -nologo -clp:ErrorsOnly -v quiet
dotnet build "$bench/RawCeiling" -c Release -nologo -clp:ErrorsOnly -v quiet
dotnet build "$bench/HeapByType" -c Release -nologo -clp:ErrorsOnly -v quiet
heapbytype="$bench/HeapByType/bin/Release/net10.0/Tidings.Bench.HeapByType.dll"
export DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1

snapshot() { # target sessions → $out/target-sessions.nettrace
  local target=$1 sessions=$2 port data pid protocol=bayeux path=/bayeux
  port=$((19000 + RANDOM % 20000))
  data=$(mktemp -d)
  if [ "$target" = tidings ]; then
    dotnet "$repo/samples/Demo/bin/Release/net10.0/Tidings.Demo.dll" --urls "http://127.0.0.1:$port" --data "$data" \
      --Logging:LogLevel:Default=Warning --Tidings:HandshakesPerSecond=1000000 --Tidings:HandshakeBurst=1000000 --Bayeux:MaxSessionsPerAddress=10000000 \
      >"$out/$target-server.log" 2>&1 &
  else
    dotnet "$bench/RawCeiling/bin/Release/net10.0/Tidings.Bench.RawCeiling.dll" --urls "http://127.0.0.1:$port" \
      >"$out/$target-server.log" 2>&1 &
    protocol=raw path=/ws
  fi
  pid=$!
  started+=("$pid")
  for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  dotnet "$bench/LoadTool/bin/Release/net10.0/Tidings.Bench.LoadTool.dll" idle --target "$target" --protocol "$protocol" \
    --path "$path" --endpoint "127.0.0.1:$port" --pid "$pid" --sources 127.0.0.1,127.0.0.2 --sessions "$sessions" \
    --settle-ms 40000 --connect-concurrency 200 --timeout 120 --out "$out/idle.jsonl" >"$out/$target-$sessions-load.log" 2>&1 &
  local load=$!
  started+=("$load")
  local open=0
  for _ in $(seq 1 600); do
    open=$(ss -tnH state established "( sport = :$port )" | wc -l)
    [ "$open" -ge "$sessions" ] && break
    sleep 0.2
  done
  sleep 3 # let the last handshakes and subscribes finish
  echo "  $target: $open sessions open; snapshot"
  # The heap-snapshot keywords make the runtime walk the heap once, right after the session starts.
  timeout -k 5 45 "$trace" collect -p "$pid" --providers "Microsoft-Windows-DotNETRuntime:0x1980001:5" \
    --duration 00:00:00:10 -o "$out/$target-$sessions.nettrace" >/dev/null 2>&1 || true
  wait "$load" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

for target in ${TARGETS:-tidings ceiling}; do
  echo "== $target"
  snapshot "$target" "$small"
  snapshot "$target" "$large"
  dotnet "$heapbytype" "$out/$target-$small.nettrace" "$out/$target-$large.nettrace" $((large - small)) \
    >"$out/$target-per-session.txt"
  head -n $((top + 1)) "$out/$target-per-session.txt"
done
echo "snapshots and per-session tables: $out"
