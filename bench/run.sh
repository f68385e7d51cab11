#!/usr/bin/env bash
# Tidings benchmark: every scenario against Tidings, Faye's Node server and a raw WebSocket ceiling, in one run.
#   bench/run.sh            full run (about 7-9 minutes); prints the table, keeps results under bench/results/
#   QUICK=1 bench/run.sh    a smoke run with small numbers (about 2 minutes)
#   TARGETS="tidings ceiling" SCENARIOS="fanout idle" bench/run.sh   only those (FANOUT_RATES=100,500 narrows fan-out)
#   SCENARIOS=store bench/run.sh   store-backed end to end, Tidings only (about 4 minutes; not in the default set):
#       1,000 WebSocket subscribers of one collection, writes at a rising rate (STORE_RATES=100,250,…) by REST POST
#       and by socket write, to the public /api/todos and to the signed-in /api/flows/bench/messages (each subscriber
#       its own user); per step committed changes/s, deliveries/s, write p50/p99, write → last subscriber p99, holds?
#   SCENARIOS=store STORE_BACKENDS="sqlite postgres postgres3" bench/run.sh   the same cases on each store, alternating,
#       and the backends side by side (about 4 minutes each): sqlite = one demo node on SQLite (the default, alone);
#       postgres = one node on PostgreSQL; postgres3 = three nodes on one PostgreSQL database, subscribers, writer
#       sessions and REST writes spread over them round-robin (no load balancer)
#   SCENARIOS=crossnode bench/run.sh   plain Bayeux publishes across nodes (about 2 minutes): publishers on node A,
#       subscribers on nodes B and C, rate stepped (CROSSNODE_RATES=100,250,…); delivered/s and publish → subscriber
#       p99, beside the same with everything on one node (CROSSNODE_BACKENDS, default "postgres postgres3")
#   SCENARIOS=client bench/run.sh   the .NET client (clients/dotnet) beside the load tool's lean client (under a minute;
#       not in the default set): managed bytes of one live collection of 10,000 todos (CLIENT_ITEMS), and events/s one
#       LiveCollection<T> applies while REST writers update the collection as fast as the server takes them, beside the
#       lean client's count of the same stream (bench/ClientCost)
#   SCENARIOS=jobs bench/run.sh   durable job queues, Tidings only (about 5 minutes; not in the default set): bench/JobsBench
#       hosts a fresh app per case in its own process (Kestrel on 127.0.0.1 port 0) over SQLite and over PostgreSQL
#       (JOBS_BACKENDS, default "sqlite postgres"): JOBS jobs (default 5,000) enqueued from server code by JOBS_ENQUEUERS
#       (32) concurrent loops (JOBS_POSTGRES, default 1,500, on PostgreSQL), each enqueuing JOBS_ENQUEUE_BATCH (1,100: one
#       job per call, then 100 per EnqueueManyAsync call) at a time, worked by a no-op in-process IJobWorker at concurrency
#       JOBS_CONCURRENCY (16,64,256): jobs/s
#       first enqueue → last succeeded, enqueue → worker start p50/p99; then JOBS_HTTP (2,000) jobs worked by 4
#       external workers over HTTP (claim 50, finish each). Each case stops by itself after JOBS_CASE_SECONDS (20)
#   BEFORE_REPO=/path/to/other/checkout SCENARIOS=store bench/run.sh   the same against that checkout's demo server
#       too (built there; SQLite only), alternating with this one, and the two side by side (before / after)
# PostgreSQL (only when a postgres backend is asked for; needs the Debian package, /usr/lib/postgresql/*/bin): one
# throwaway cluster for the run in a temporary folder (initdb as the postgres user when run as root; loopback only;
# fsync on), a fresh database for every server start, the cluster stopped and its folder removed at exit.
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
temporary=()
pg_bin="" pg_dir="" pg_port="" pg_pid=""
cleanup() {
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  sleep 1
  for pid in "${started[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  stop_postgres
  for dir in "${temporary[@]}"; do
    rm -rf "$dir"
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
# Stores: sqlite (one node), postgres (one node), postgres3 (three nodes on one database).
store_backends=${STORE_BACKENDS:-sqlite}
crossnode_backends=${CROSSNODE_BACKENDS:-postgres postgres3}
for backend in $store_backends $crossnode_backends; do
  case $backend in
    sqlite | postgres | postgres3) ;;
    *) echo "unknown backend '$backend' (STORE_BACKENDS / CROSSNODE_BACKENDS: sqlite postgres postgres3)" >&2; exit 2 ;;
  esac
done
if [ -n "$before_repo" ] && [[ " $store_backends " != *" sqlite "* ]]; then
  echo "BEFORE_REPO runs on SQLite only: keep sqlite in STORE_BACKENDS" >&2
  exit 2
fi
needs_postgres=false
if targeted tidings && { { wanted store && [[ " $store_backends " == *" postgres"* ]]; } ||
  { wanted crossnode && [[ " $crossnode_backends " == *" postgres"* ]]; }; }; then
  needs_postgres=true
fi
jobs_backends=${JOBS_BACKENDS:-sqlite postgres}
if targeted tidings && wanted jobs && [[ " $jobs_backends " == *" postgres "* ]]; then
  needs_postgres=true
fi

echo "== build (Release)"
dotnet build "$repo/samples/Demo" -c Release -nologo -clp:ErrorsOnly -v quiet
dotnet build "$bench/LoadTool" -c Release -nologo -clp:ErrorsOnly -v quiet
if wanted client; then
  dotnet build "$bench/ClientCost" -c Release -nologo -clp:ErrorsOnly -v quiet
fi
if wanted jobs; then
  dotnet build "$bench/JobsBench" -c Release -nologo -clp:ErrorsOnly -v quiet
fi
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
clientcost="$bench/ClientCost/bin/Release/net10.0/Tidings.Bench.ClientCost.dll"
jobsbench="$bench/JobsBench/bin/Release/net10.0/Tidings.Bench.JobsBench.dll"
# Receive loops are short: run socket completions inline instead of hopping to the thread pool. Not for the demo on
# PostgreSQL (start_server): its store runs synchronous Npgsql calls inside async continuations, which then may run on
# the socket engine's own thread, wait there for that thread, and stall every socket of the process (bench/RESULTS.md).
export DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1

free_port() {
  local port=$((19000 + RANDOM % 20000))
  while ss -ltn "sport = :$port" | grep -q LISTEN; do port=$((port + 1)); done
  echo "$port"
}

# PostgreSQL tools run as the postgres user when this script runs as root (initdb refuses root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() { # → pg_bin, pg_dir, pg_port, pg_pid
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$pg_bin" ]; then
    echo "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin): apt-get install postgresql" >&2
    exit 2
  fi
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/tidings-bench-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; fi
  pg_port=$(free_port)
  as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$out/postgres-initdb.log" 2>&1
  # Three nodes hold up to ~100 pooled connections each at most; 400 leaves room.
  as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $pg_dir -c fsync=on -c max_connections=400" start >/dev/null
  pg_pid=$(head -n 1 "$pg_dir/data/postmaster.pid")
  echo "== PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (pid $pg_pid, cluster in $pg_dir)"
}

stop_postgres() { # by the postmaster's PID: SIGINT is PostgreSQL's fast shutdown
  if [ -z "$pg_dir" ]; then return 0; fi
  if [ -n "$pg_pid" ] && kill -INT "$pg_pid" 2>/dev/null; then
    for _ in $(seq 1 100); do
      kill -0 "$pg_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pg_pid" 2>/dev/null || true
  fi
  cp "$pg_dir/server.log" "$out/postgres-server.log" 2>/dev/null || true
  rm -rf "$pg_dir"
  pg_dir=""
}

database=""
databases=0
new_database() { # → database (its name) and connection (an Npgsql connection string)
  databases=$((databases + 1))
  database="bench_$databases"
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$database"
  connection="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=$database"
}

wait_listening() { # port name log
  for _ in $(seq 1 150); do
    # Listening is enough (Faye answers nothing outside /bayeux; Kestrel listens once the app is ready).
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not start; see $3" >&2
  return 1
}

server_pids=()
ports=()
server_extra=() # more settings for the demo server (the client scenario's limits)
start_server() { # target [backend] → sets server_pids, ports (one per node), port (the first) and database
  local target=$1 backend=${2:-sqlite}
  server_pids=()
  ports=()
  database=""
  case "$target" in
    tidings | before)
      local data dll=$demo nodes=1 node log store=() named=() runtime=()
      if [ "$target" = before ]; then dll=$before_demo; fi
      # One data folder for all nodes: they share the sign-in key in it (so a token works on every node).
      data=$(mktemp -d)
      temporary+=("$data")
      case $backend in
        postgres) new_database; store=(--postgres "$connection") ;;
        postgres3) new_database; store=(--postgres "$connection"); nodes=3 ;;
      esac
      if [ ${#store[@]} -gt 0 ]; then runtime=(env -u DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS); fi
      for node in a b c; do
        [ "${#ports[@]}" -lt "$nodes" ] || break
        port=$(free_port)
        while [[ " ${ports[*]} " == *" $port "* ]]; do port=$(free_port); done
        ports+=("$port")
        log="$out/$target-$backend-$node-server.log"
        named=()
        if [ ${#store[@]} -gt 0 ]; then named=(--Bayeux:NodeId="$node"); fi
        # Rate limits lifted: they are per-session and per-address abuse guards, not what is measured here (the store
        # scenario signs in 1,000 users and opens 1,000 sessions from 127.0.0.1-4: /api/session itself is not limited).
        "${runtime[@]}" dotnet "$dll" --urls "http://127.0.0.1:$port" --data "$data" --Logging:LogLevel:Default=Warning \
          --Tidings:PublishesPerSecond=10000000 --Tidings:PublishBurst=10000000 \
          --Tidings:RequestsPerSecond=10000000 --Tidings:RequestBurst=10000000 \
          --Tidings:HandshakesPerSecond=10000000 --Tidings:HandshakeBurst=10000000 --Bayeux:MaxSessionsPerAddress=10000000 "${store[@]}" "${named[@]}" "${server_extra[@]}" >"$log" 2>&1 &
        server_pids+=($!)
        started+=($!)
        # One node at a time: the first creates the sign-in key (and the schema) before the next starts.
        wait_listening "$port" "$target $backend node $node" "$log"
      done
      port=${ports[0]}
      ;;
    faye | ceiling)
      port=$(free_port)
      ports=("$port")
      if [ "$target" = faye ]; then
        node "$bench/faye-server.js" "$port" >"$out/faye-server.log" 2>&1 &
      else
        dotnet "$ceiling" --urls "http://127.0.0.1:$port" >"$out/ceiling-server.log" 2>&1 &
      fi
      server_pids=($!)
      started+=($!)
      wait_listening "$port" "$target" "$out/$target-server.log"
      ;;
  esac
}

stop_server() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${server_pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  # Its database is not needed again: keep the cluster's disk use to one run's worth.
  if [ -n "$database" ]; then
    "$pg_bin/dropdb" -h 127.0.0.1 -p "$pg_port" -U postgres --if-exists "$database" || true
  fi
}

if [ "${QUICK:-}" = 1 ]; then
  fanout=(--subs 200 --rates 100,1000,4000)
  channels=(--subs 1000 --shared-rates 5,20)
  idle=(--sessions 2000)
  e2e=(--subs 50 --rate 50 --seconds 2)
  store=(--subs 50 --rates "${STORE_RATES:-50,100,200}" --compare-subs 10 --writers 2 --rest-connections 4)
  crossnode=(--subs 20 --pubs 2 --rates "${CROSSNODE_RATES:-100,500,1000}")
else
  fanout=(--subs 1000 --rates "${FANOUT_RATES:-100,250,500,1000,2000,4000,8000}")
  channels=(--subs 10000 --shared-rates 2,5,10,20,50 --per-channel-factor 500)
  # 19,000: the hard open-file limit here is 20,000 per process (server and load tool alike).
  idle=(--sessions 19000 --connect-concurrency 200 --buffer 2048)
  e2e=(--subs 200 --rate 100 --seconds 5)
  store=(--subs 1000 --rates "${STORE_RATES:-100,250,500,1000,2000,4000}" --compare-subs 10 --writers 4 --rest-connections 8)
  crossnode=(--subs 100 --pubs 2 --rates "${CROSSNODE_RATES:-100,250,500,1000,2000,4000,8000}")
fi
sources=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4

run() { # target backend scenario options…  (backend: sqlite, postgres or postgres3 for tidings and before; - otherwise)
  local target=$1 backend=$2 scenario=$3
  shift 3
  local protocol=bayeux path=/bayeux endpoints pids extra=()
  if [ "$target" = ceiling ]; then protocol=raw path=/ws; fi
  start_server "$target" "$backend"
  endpoints=$(printf '127.0.0.1:%s,' "${ports[@]}")
  pids=$(IFS=,; echo "${server_pids[*]}")
  if [ "$backend" != - ]; then extra+=(--backend "${backend%3}"); fi
  if [ -n "$database" ]; then extra+=(--db-pid "$pg_pid"); fi
  local label=$target
  if [ "$backend" != - ]; then label+=" $backend"; fi
  echo "== $label $scenario (server pid ${server_pids[*]}, port ${ports[*]}${database:+, database $database})"
  dotnet "$loadtool" "$scenario" --target "$target" --protocol "$protocol" --path "$path" \
    --endpoints "${endpoints%,}" --pids "$pids" "${extra[@]}" --sources "$sources" --out "$results" --timeout 240 "$@" ||
    echo "   ($target $scenario reported a failure; see the table)"
  stop_server
}

if $needs_postgres; then start_postgres; fi

for target in $targets; do
  backend=-
  if [ "$target" = tidings ]; then backend=sqlite; fi
  for scenario in fanout channels idle; do
    wanted "$scenario" || continue
    case $scenario in
      fanout) run "$target" "$backend" fanout "${fanout[@]}" ;;
      channels) run "$target" "$backend" channels "${channels[@]}" ;;
      idle) run "$target" "$backend" idle "${idle[@]}" ;;
    esac
  done
done
if [[ " $targets " == *" tidings "* ]] && wanted e2e; then run tidings sqlite e2e "${e2e[@]}"; fi
if targeted tidings && wanted store; then
  # Each collection × write path on a fresh server (or three); BEFORE_REPO and the backends alternate, so drift in
  # this machine's load falls on all alike.
  for collection in /api/todos /api/flows/bench/messages; do
    if [ "$collection" = /api/todos ]; then
      shape=(--collection "$collection" --field title --sign-in no)
    else
      shape=(--collection "$collection" --field content --sign-in yes)
    fi
    for writes in rest socket; do
      if [ -n "$before_repo" ]; then run before sqlite store "${shape[@]}" --writes "$writes" "${store[@]}"; fi
      for backend in $store_backends; do
        run tidings "$backend" store "${shape[@]}" --writes "$writes" "${store[@]}"
      done
    done
  done
fi
if targeted tidings && wanted crossnode; then
  for backend in $crossnode_backends; do
    run tidings "$backend" crossnode "${crossnode[@]}"
  done
fi
if targeted tidings && wanted client; then
  # One SNAPSHOT of every item: the snapshot, list and per-session queue limits raised to fit it.
  client_items=${CLIENT_ITEMS:-10000}
  server_extra=(--Tidings:MaxSnapshotItems=$((client_items * 2)) --Tidings:MaxListItems=$((client_items * 2))
    --Bayeux:MaxQueuedBytes=$((client_items * 2000)))
  start_server tidings sqlite
  server_extra=()
  echo "== tidings sqlite client (server pid ${server_pids[*]}, port $port)"
  client_seconds=${CLIENT_SECONDS:-5}
  if [ "${QUICK:-}" = 1 ]; then client_seconds=2; fi
  {
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); dotnet $(dotnet --version); $(date -u '+%Y-%m-%d %H:%M UTC')"
    dotnet "$clientcost" --url "http://127.0.0.1:$port" --pid "${server_pids[0]}" --items "$client_items" \
      --seconds "$client_seconds" --out "$out/client.jsonl" --timeout 150 ||
      echo "   (client scenario reported a failure; see above)"
  } | tee "$out/client-table.md"
  stop_server
  if [ ! -s "$results" ]; then
    echo
    echo "results: $out"
    exit 0
  fi
fi

if targeted tidings && wanted jobs; then
  {
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); dotnet $(dotnet --version)${pg_bin:+; PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}')}; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
    for backend in $jobs_backends; do
      echo "== jobs $backend"
      pg=() count=${JOBS:-5000} http_count=${JOBS_HTTP:-2000}
      if [ "$backend" = postgres ]; then
        pg=(--postgres "Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres")
        count=${JOBS_POSTGRES:-1500} http_count=${JOBS_HTTP_POSTGRES:-1000} # tens to a few hundred jobs/s here
      fi
      # Its own process; it stops by itself (each case after JOBS_CASE_SECONDS); timeout is the backstop.
      timeout -k 5 $((${JOBS_CASE_SECONDS:-20} * 10 + 60)) env -u DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS dotnet "$jobsbench" \
        --backend "$backend" "${pg[@]}" --jobs "$count" --http-jobs "$http_count" --enqueuers "${JOBS_ENQUEUERS:-32}" \
        --concurrency "${JOBS_CONCURRENCY:-16,64,256}" --enqueue-batch "${JOBS_ENQUEUE_BATCH:-1,100}" --http-workers 4 --case-timeout "${JOBS_CASE_SECONDS:-20}" --out "$out/jobs.jsonl" ||
        echo "   (jobs $backend reported a failure or an unfinished case; see the table)"
    done
  } | tee "$out/jobs-table.md"
  if [ ! -s "$results" ]; then
    echo
    echo "results: $out"
    exit 0
  fi
fi

{
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); dotnet $(dotnet --version); node $(node --version)${pg_bin:+; PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}')}; $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  dotnet "$loadtool" report "$results"
} | tee "$out/table.md"
echo
echo "results: $out"
