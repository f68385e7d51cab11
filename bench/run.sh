#!/usr/bin/env bash
# Tidings benchmark: every scenario against Tidings, Faye's Node server and a raw WebSocket ceiling, in one run.
#   bench/run.sh            full run (about 7-9 minutes); prints the table, keeps results under bench/results/
#   QUICK=1 bench/run.sh    a smoke run with small numbers (about 2 minutes)
#   TARGETS="tidings ceiling" SCENARIOS="fanout idle" bench/run.sh   only those (FANOUT_RATES=100,500 narrows fan-out)
#   SCENARIOS=store bench/run.sh   store-backed end to end, Tidings only (about 4 minutes; not in the default set):
#       1,000 WebSocket subscribers of one collection, writes at a rising rate (STORE_RATES=100,250,…) by REST POST
#       and by socket write, to the public /api/todos and to the signed-in /api/flows/bench/messages (each subscriber
#       its own user); per step committed changes/s, deliveries/s, write p50/p99, write → last subscriber p99, holds?
#   BEFORE_REPO=/path/to/other/checkout SCENARIOS=store bench/run.sh   the same against that checkout's demo server
#       too (built there), alternating with this one, and the two side by side (before / after)
# Builds what it needs (Release), starts each server fresh for each scenario on a free loopback port, and stops
# every process it started, by PID. Load tool and servers share this machine's cores: see RESULTS.md.
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
repo=${TIDINGS_REPO:-$(dirname "$bench")}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$bench/results/$stamp"
mkdir -p "$out"
results="$out/results.jsonl"

# Sockets: the load tool and the server each hold one descriptor per session.
ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n) (hard limit; the idle scenario stays under it)"

started=()
cleanup() {
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  sleep 1
  for pid in "${started[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# TARGETS / SCENARIOS narrow a run while working on one number (the published table needs all).
targets=${TARGETS:-tidings faye ceiling}
scenarios=${SCENARIOS:-fanout channels idle e2e}
wanted() { [[ " $scenarios " == *" $1 "* ]]; }
targeted() { [[ " $targets " == *" $1 "* ]]; }
# Faye and the ceiling only take part in the comparison scenarios; a store-only run needs neither.
comparing=false
if wanted fanout || wanted channels || wanted idle; then comparing=true; fi
before_repo=${BEFORE_REPO:-}
if [ -n "$before_repo" ] && ! wanted store; then
  echo "BEFORE_REPO is only used by the store scenario (SCENARIOS=store)" >&2
  exit 2
fi

echo "== build (Release)"
dotnet build "$repo/samples/Demo" -c Release -nologo -clp:ErrorsOnly -v quiet
dotnet build "$bench/LoadTool" -c Release -nologo -clp:ErrorsOnly -v quiet
if $comparing && targeted ceiling; then
  dotnet build "$bench/RawCeiling" -c Release -nologo -clp:ErrorsOnly -v quiet
fi
if $comparing && targeted faye && [ ! -d "$bench/node_modules/faye" ]; then
  (cd "$bench" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -n "$before_repo" ]; then
  before_repo=$(cd "$before_repo" && pwd)
  echo "== build BEFORE_REPO=$before_repo ($(git -C "$before_repo" log -1 --format='%h %s' 2>/dev/null | cut -c1-80))"
  dotnet build "$before_repo/samples/Demo" -c Release -nologo -clp:ErrorsOnly -v quiet
fi

demo="$repo/samples/Demo/bin/Release/net10.0/Tidings.Demo.dll"
before_demo="$before_repo/samples/Demo/bin/Release/net10.0/Tidings.Demo.dll"
ceiling="$bench/RawCeiling/bin/Release/net10.0/Tidings.Bench.RawCeiling.dll"
loadtool="$bench/LoadTool/bin/Release/net10.0/Tidings.Bench.LoadTool.dll"
# Receive loops are short: run socket completions inline instead of hopping to the thread pool.
export DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1

free_port() {
  local port=$((19000 + RANDOM % 20000))
  while ss -ltn "sport = :$port" | grep -q LISTEN; do port=$((port + 1)); done
  echo "$port"
}

server_pid=""
start_server() { # target → sets server_pid and port
  local target=$1
  port=$(free_port)
  case "$target" in
    tidings | before)
      local data dll=$demo
      if [ "$target" = before ]; then dll=$before_demo; fi
      data=$(mktemp -d)
      # Rate limits lifted: they are per-session and per-address abuse guards, not what is measured here (the store
      # scenario signs in 1,000 users and opens 1,000 sessions from 127.0.0.1-4: /api/session itself is not limited).
      dotnet "$dll" --urls "http://127.0.0.1:$port" --data "$data" --Logging:LogLevel:Default=Warning \
        --Tidings:PublishesPerSecond=10000000 --Tidings:PublishBurst=10000000 \
        --Tidings:RequestsPerSecond=10000000 --Tidings:RequestBurst=10000000 \
        --Tidings:HandshakesPerSecond=10000000 --Tidings:HandshakeBurst=10000000 >"$out/$target-server.log" 2>&1 &
      ;;
    faye)
      node "$bench/faye-server.js" "$port" >"$out/faye-server.log" 2>&1 &
      ;;
    ceiling)
      dotnet "$ceiling" --urls "http://127.0.0.1:$port" >"$out/ceiling-server.log" 2>&1 &
      ;;
  esac
  server_pid=$!
  started+=("$server_pid")
  for _ in $(seq 1 150); do
    # Listening is enough (Faye answers nothing outside /bayeux; Kestrel listens once the app is ready).
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$target did not start; see $out/$target-server.log" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$server_pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$server_pid" 2>/dev/null || true
}

if [ "${QUICK:-}" = 1 ]; then
  fanout=(--subs 200 --rates 100,1000,4000)
  channels=(--subs 1000 --shared-rates 5,20)
  idle=(--sessions 2000)
  e2e=(--subs 50 --rate 50 --seconds 2)
  store=(--subs 50 --rates "${STORE_RATES:-50,100,200}" --compare-subs 10 --writers 2 --rest-connections 4)
else
  fanout=(--subs 1000 --rates "${FANOUT_RATES:-100,250,500,1000,2000,4000,8000}")
  channels=(--subs 10000 --shared-rates 2,5,10,20,50 --per-channel-factor 500)
  # 19,000: the hard open-file limit here is 20,000 per process (server and load tool alike).
  idle=(--sessions 19000 --connect-concurrency 200 --buffer 2048)
  e2e=(--subs 200 --rate 100 --seconds 5)
  store=(--subs 1000 --rates "${STORE_RATES:-100,250,500,1000,2000,4000}" --compare-subs 10 --writers 4 --rest-connections 8)
fi
sources=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4

run() { # target scenario options…
  local target=$1 scenario=$2
  shift 2
  local protocol=bayeux path=/bayeux
  if [ "$target" = ceiling ]; then protocol=raw path=/ws; fi
  start_server "$target"
  echo "== $target $scenario (server pid $server_pid, port $port)"
  dotnet "$loadtool" "$scenario" --target "$target" --protocol "$protocol" --path "$path" \
    --endpoint "127.0.0.1:$port" --pid "$server_pid" --sources "$sources" --out "$results" --timeout 240 "$@" ||
    echo "   ($target $scenario reported a failure; see the table)"
  stop_server
}

for target in $targets; do
  for scenario in fanout channels idle; do
    wanted "$scenario" || continue
    case $scenario in
      fanout) run "$target" fanout "${fanout[@]}" ;;
      channels) run "$target" channels "${channels[@]}" ;;
      idle) run "$target" idle "${idle[@]}" ;;
    esac
  done
done
if [[ " $targets " == *" tidings "* ]] && wanted e2e; then run tidings e2e "${e2e[@]}"; fi
if targeted tidings && wanted store; then
  # Each collection × write path on a fresh server; with BEFORE_REPO the two builds alternate, so drift in this
  # machine's load falls on both alike.
  for collection in /api/todos /api/flows/bench/messages; do
    if [ "$collection" = /api/todos ]; then
      shape=(--collection "$collection" --field title --sign-in no)
    else
      shape=(--collection "$collection" --field content --sign-in yes)
    fi
    for writes in rest socket; do
      if [ -n "$before_repo" ]; then run before store "${shape[@]}" --writes "$writes" "${store[@]}"; fi
      run tidings store "${shape[@]}" --writes "$writes" "${store[@]}"
    done
  done
fi

{
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); dotnet $(dotnet --version); node $(node --version); $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  dotnet "$loadtool" report "$results"
} | tee "$out/table.md"
echo
echo "results: $out"
