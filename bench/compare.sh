#!/usr/bin/env bash
# Compares our nats-server with the Go reference server (2.9.10) using our `nats bench`.
#
# Both servers run with the same flags on free loopback ports; every workload runs against
# the reference and then ours, round after round (A B A B ...), and the table shows the
# median of the rounds and the ratio ours/reference. Only ratios from one run mean much on
# a shared machine.
#
# Usage: bench/compare.sh [--md FILE] [--rounds N] [--only "pub16 ps11 ..."]
#
# Environment (defaults in brackets):
#   ROUNDS [3]            rounds of every workload
#   BENCH_MD              also write the table as markdown to this file (same as --md)
#   SCENARIOS [all]       subset, space separated: pub16 pub128 ps11 fan5 ps44 queue3 reqrep
#                         subs100k cluster conns
#   PUB_MSGS [1000000]    messages for publish-only runs
#   PS_MSGS [500000]      messages for 1->1, queue group and the 100k-subscription run
#   FAN_MSGS [200000]     messages for 1->5 (each subscriber receives all of them)
#   MANY_MSGS [200000]    messages for 4->4 (split over the publishers; each sub gets all)
#   REQ_MSGS [20000]      request/reply round trips
#   CLUSTER_MSGS [300000] messages through the 3-node cluster
#   CONNS [10000]         idle connections for the memory measurement
#   SUBS [100000]         subscriptions installed by the idle client (WILDCARD_PCT [10] % wildcards)
#   BENCH_TIMEOUT [120]   seconds before a single bench run counts as hung
#   KEEP_GOING [0]        1: a failed run is recorded as FAILED and the script goes on
#                         (a failure of our server in the cluster scenario never aborts)
#   REF_SERVER [/usr/sbin/nats-server]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${ROUNDS:-3}
MD_FILE=${BENCH_MD:-}
SCENARIOS=${SCENARIOS:-all}
while [ $# -gt 0 ]; do
  case $1 in
    --md) MD_FILE=$2; shift 2 ;;
    --md=*) MD_FILE=${1#--md=}; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#--rounds=}; shift ;;
    --only) SCENARIOS=$2; shift 2 ;;
    --only=*) SCENARIOS=${1#--only=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case $ROUNDS in ''|*[!0-9]*|0) echo "compare.sh: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
[ "$SCENARIOS" = all ] && SCENARIOS="pub16 pub128 ps11 fan5 ps44 queue3 reqrep subs100k cluster conns"

PUB_MSGS=${PUB_MSGS:-1000000}
PS_MSGS=${PS_MSGS:-500000}
FAN_MSGS=${FAN_MSGS:-200000}
MANY_MSGS=${MANY_MSGS:-200000}
REQ_MSGS=${REQ_MSGS:-20000}
CLUSTER_MSGS=${CLUSTER_MSGS:-300000}
CONNS=${CONNS:-10000}
SUBS=${SUBS:-100000}
WILDCARD_PCT=${WILDCARD_PCT:-10}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
KEEP_GOING=${KEEP_GOING:-0}
REF_SERVER=${REF_SERVER:-/usr/sbin/nats-server}
HELPER="python3 $ROOT/bench/helper.py"
export PUB_MSGS PS_MSGS FAN_MSGS MANY_MSGS REQ_MSGS CLUSTER_MSGS CONNS SUBS WILDCARD_PCT # for the labels

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf '\ncompare.sh: %s\n' "$*" >&2; exit 1; }
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- set-up

if [ ! -x "$REF_SERVER" ]; then
  [ "$REF_SERVER" = /usr/sbin/nats-server ] || die "reference server $REF_SERVER not found"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing the reference server (Debian package nats-server)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
  [ -x "$REF_SERVER" ] || die "apt-get did not install $REF_SERVER"
fi
say "reference: $("$REF_SERVER" --version)"

say "building release binaries"
cargo build --release -p nats-server -p nats-cli
TARGET=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
OURS_SERVER=$TARGET/release/nats-server
NATS=$TARGET/release/nats
for b in "$OURS_SERVER" "$NATS"; do [ -x "$b" ] || die "missing $b after the build"; done
"$NATS" bench --help | grep -q -- --queue || die "$NATS bench has no --queue flag"

# 10k connections need as many descriptors in the helper and in the servers (inherited).
hard=$(ulimit -Hn)
nofile=$((CONNS + 1000))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then
  die "ulimit -Hn is $hard, need at least $nofile for $CONNS connections (lower CONNS)"
fi
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$nofile" ] && ulimit -n "$nofile"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nats-compare.XXXXXX")
RESULTS=$WORK/results.tsv
: >"$RESULTS"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "work directory (server logs, bench outputs): $WORK"

# ---------------------------------------------------------------- servers

server_bin() { if [ "$1" = ref ]; then echo "$REF_SERVER"; else echo "$OURS_SERVER"; fi; }
impl_name() { if [ "$1" = ref ]; then echo reference; else echo ours; fi; }

# start_server IMPL NAME PORT [FLAGS...]: sets SERVER_PID. Same flags for both servers.
start_server() {
  local impl=$1 name=$2 port=$3
  shift 3
  local log=$WORK/$name.log
  "$(server_bin "$impl")" -a 127.0.0.1 -p "$port" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  if ! $HELPER wait-ready "$port" 10 2>>"$log" || ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 20 "$log" >&2
    die "$(impl_name "$impl") server ($name) did not start: $(server_bin "$impl") -a 127.0.0.1 -p $port $*"
  fi
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- runs and results

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"; }

# fail_run SCEN IMPL ROUND WHAT OUTFILE METRICS...: report, record FAILED, maybe abort.
fail_run() {
  local scen=$1 impl=$2 rnd=$3 what=$4 out=$5 m
  shift 5
  {
    printf '\n!! %s: %s server, round %s: %s\n' "$scen" "$(impl_name "$impl")" "$rnd" "$what"
    if [ -n "$out" ] && [ -f "$out" ]; then
      printf '!! output (%s):\n' "$out"
      tail -n 15 "$out" | sed 's/^/   | /'
    fi
  } >&2
  for m in "$@"; do record "$scen" "$m" "$impl" "$rnd" FAIL; done
  if [ "$KEEP_GOING" != 1 ] && ! { [ "$scen" = cluster ] && [ "$impl" = ours ]; }; then
    die "benchmark run failed (set KEEP_GOING=1 to record it as FAILED and continue)"
  fi
}

# bench OUTFILE PORT ARGS...: runs our `nats bench` against PORT; parses the output into
# PUB_RATE SUB_RATE LAT_P50 LAT_P99 LOST. Returns non-zero (BENCH_ERR set) on failure.
bench() {
  local out=$1 port=$2
  shift 2
  local cmd=("$NATS" -s "nats://127.0.0.1:$port" bench "$@" --no-progress)
  printf '%s\n' "\$ ${cmd[*]}" >"$out"
  local rc=0
  timeout "$BENCH_TIMEOUT" "${cmd[@]}" >>"$out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    BENCH_ERR="exit status $rc$([ "$rc" -eq 124 ] && echo " (timed out after ${BENCH_TIMEOUT}s)"): ${cmd[*]}"
    return 1
  fi
  eval "$($HELPER parse "$out")"
  if [ -n "$LOST" ]; then
    BENCH_ERR="incomplete delivery ($LOST): ${cmd[*]}"
    return 1
  fi
  return 0
}

# run_simple SCEN IMPL ROUND PORT "METRIC=VAR ..." BENCH-ARGS...
run_simple() {
  local scen=$1 impl=$2 rnd=$3 port=$4 pairs=$5 pair
  shift 5
  local out=$WORK/r$rnd-$scen-$impl.out
  local metrics=()
  for pair in $pairs; do metrics+=("${pair%%=*}"); done
  if bench "$out" "$port" "$@"; then
    for pair in $pairs; do
      local var=${pair##*=}
      local v=${!var}
      if [ -z "$v" ]; then
        fail_run "$scen" "$impl" "$rnd" "no ${pair%%=*} in the output" "$out" "${metrics[@]}"
        return 0
      fi
      record "$scen" "${pair%%=*}" "$impl" "$rnd" "$v"
    done
    printf '   %-9s %-9s %s\n' "$scen" "$(impl_name "$impl")" "$(summary "$pairs")" >&2
  else
    fail_run "$scen" "$impl" "$rnd" "$BENCH_ERR" "$out" "${metrics[@]}"
  fi
}

summary() {
  local pair s=""
  for pair in $1; do
    local var=${pair##*=}
    s+="${pair%%=*}=${!var} "
  done
  echo "$s"
}

# ---------------------------------------------------------------- scenarios

subs100k() {
  local impl=$1 rnd=$2 port=$3
  local out=$WORK/r$rnd-subs100k-$impl-holder.out
  $HELPER subs "$port" "$SUBS" "$WILDCARD_PCT" >"$out" 2>&1 &
  local holder=$!
  PIDS+=("$holder")
  local i
  for i in $(seq 1 600); do
    grep -q '^ready' "$out" && break
    kill -0 "$holder" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^ready' "$out"; then
    stop_pid "$holder"
    fail_run subs100k "$impl" "$rnd" "installing $SUBS subscriptions failed" "$out" sub_rate install_ms
    return 0
  fi
  record subs100k install_ms "$impl" "$rnd" "$(awk '/^ready/ {print $2}' "$out")"
  run_simple subs100k "$impl" "$rnd" "$port" "sub_rate=SUB_RATE" \
    bench.ps --pub 1 --sub 1 --msgs "$PS_MSGS" --size 128
  if ! kill -0 "$holder" 2>/dev/null; then
    fail_run subs100k "$impl" "$rnd" "the subscription holder lost its connection" "$out" sub_rate
  fi
  stop_pid "$holder"
}

cluster() {
  local impl=$1 rnd=$2
  local ports
  mapfile -t ports < <($HELPER freeports 6)
  local c1=${ports[0]} c2=${ports[1]} c3=${ports[2]} r1=${ports[3]} r2=${ports[4]} r3=${ports[5]}
  local common=(--cluster_name bench)
  local pids=()
  start_server "$impl" "r$rnd-cluster-$impl-n1" "$c1" --cluster "nats://127.0.0.1:$r1" "${common[@]}"
  pids+=("$SERVER_PID")
  start_server "$impl" "r$rnd-cluster-$impl-n2" "$c2" --cluster "nats://127.0.0.1:$r2" \
    --routes "nats://127.0.0.1:$r1" "${common[@]}"
  pids+=("$SERVER_PID")
  start_server "$impl" "r$rnd-cluster-$impl-n3" "$c3" --cluster "nats://127.0.0.1:$r3" \
    --routes "nats://127.0.0.1:$r1" "${common[@]}"
  pids+=("$SERVER_PID")
  local probe=$WORK/r$rnd-cluster-$impl-probe.out
  if ! $HELPER probe "$c1" "$c2" 15 >"$probe" 2>&1; then
    fail_run cluster "$impl" "$rnd" "routes did not come up (node 1 -> node 2); server logs: $WORK/r$rnd-cluster-$impl-n*.log" \
      "$probe" sub_rate
  else
    # Subscriber on node 2 in the background, publisher on node 1; the subscriber's rate counts.
    local subout=$WORK/r$rnd-cluster-$impl-sub.out pubout=$WORK/r$rnd-cluster-$impl-pub.out
    local subcmd=("$NATS" -s "nats://127.0.0.1:$c2" bench bench.cl --sub 1 --msgs "$CLUSTER_MSGS" --size 128 --no-progress)
    printf '%s\n' "\$ ${subcmd[*]}" >"$subout"
    timeout "$BENCH_TIMEOUT" "${subcmd[@]}" >>"$subout" 2>&1 &
    local subpid=$! subrc=0
    PIDS+=("$subpid")
    sleep 1 # let the subscription reach node 1 over the route
    if ! bench "$pubout" "$c1" bench.cl --pub 1 --msgs "$CLUSTER_MSGS" --size 128; then
      stop_pid "$subpid"
      fail_run cluster "$impl" "$rnd" "publisher on node 1: $BENCH_ERR" "$pubout" sub_rate
    else
      wait "$subpid" || subrc=$?
      eval "$($HELPER parse "$subout")"
      if [ "$subrc" -ne 0 ]; then
        fail_run cluster "$impl" "$rnd" "subscriber on node 2: exit status $subrc: ${subcmd[*]}" "$subout" sub_rate
      elif [ -n "$LOST" ] || [ -z "$SUB_RATE" ]; then
        fail_run cluster "$impl" "$rnd" "subscriber on node 2: incomplete delivery (${LOST:-no Sub stats}): ${subcmd[*]}" \
          "$subout" sub_rate
      else
        record cluster sub_rate "$impl" "$rnd" "$SUB_RATE"
        printf '   %-9s %-9s sub_rate=%s\n' cluster "$(impl_name "$impl")" "$SUB_RATE" >&2
      fi
    fi
  fi
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
}

conns() {
  local impl=$1 rnd=$2 port
  port=$($HELPER freeports 1)
  start_server "$impl" "r$rnd-conns-$impl" "$port"
  local pid=$SERVER_PID out=$WORK/r$rnd-conns-$impl.out
  if $HELPER conns "$port" "$CONNS" "$pid" >"$out" 2>&1 && kill -0 "$pid" 2>/dev/null; then
    local rss_before_kb rss_after_kb open_secs
    eval "$(tail -n 1 "$out")"
    record conns rss_idle "$impl" "$rnd" "$(awk -v a="$rss_before_kb" 'BEGIN {printf "%.2f", a / 1024}')"
    record conns rss_conns "$impl" "$rnd" "$(awk -v a="$rss_after_kb" 'BEGIN {printf "%.2f", a / 1024}')"
    record conns per_conn "$impl" "$rnd" \
      "$(awk -v a="$rss_after_kb" -v b="$rss_before_kb" -v n="$CONNS" 'BEGIN {printf "%.3f", (a - b) / n}')"
    record conns open_s "$impl" "$rnd" "$open_secs"
    printf '   %-9s %-9s RSS %s -> %s KiB (%ss to open)\n' conns "$(impl_name "$impl")" \
      "$rss_before_kb" "$rss_after_kb" "$open_secs" >&2
  else
    fail_run conns "$impl" "$rnd" "opening $CONNS idle connections failed" "$out" rss_idle rss_conns per_conn
  fi
  stop_pid "$pid"
}

# ---------------------------------------------------------------- rounds

T0=$(date +%s)
declare -A PORT
for rnd in $(seq 1 "$ROUNDS"); do
  say "round $rnd of $ROUNDS"
  mapfile -t ports < <($HELPER freeports 2)
  start_server ref "r$rnd-ref" "${ports[0]}"
  ref_pid=$SERVER_PID
  start_server ours "r$rnd-ours" "${ports[1]}"
  ours_pid=$SERVER_PID
  PORT=([ref]=${ports[0]} [ours]=${ports[1]})

  for scen in pub16 pub128 ps11 fan5 ps44 queue3 reqrep subs100k; do
    want "$scen" || continue
    for impl in ref ours; do
      port=${PORT[$impl]}
      case $scen in
        pub16) run_simple pub16 $impl "$rnd" "$port" "pub_rate=PUB_RATE" \
                 bench.pub --pub 1 --msgs "$PUB_MSGS" --size 16 ;;
        pub128) run_simple pub128 $impl "$rnd" "$port" "pub_rate=PUB_RATE" \
                 bench.pub --pub 1 --msgs "$PUB_MSGS" --size 128 ;;
        ps11) run_simple ps11 $impl "$rnd" "$port" "sub_rate=SUB_RATE load_p50=LAT_P50 load_p99=LAT_P99" \
                 bench.ps --pub 1 --sub 1 --msgs "$PS_MSGS" --size 128 ;;
        fan5) run_simple fan5 $impl "$rnd" "$port" "sub_rate=SUB_RATE" \
                 bench.fan --pub 1 --sub 5 --msgs "$FAN_MSGS" --size 128 ;;
        ps44) run_simple ps44 $impl "$rnd" "$port" "sub_rate=SUB_RATE" \
                 bench.many --pub 4 --sub 4 --msgs "$MANY_MSGS" --size 128 ;;
        queue3) run_simple queue3 $impl "$rnd" "$port" "sub_rate=SUB_RATE" \
                 bench.q --pub 1 --sub 3 --queue benchq --msgs "$PS_MSGS" --size 128 ;;
        reqrep) run_simple reqrep $impl "$rnd" "$port" "req_rate=PUB_RATE lat_p50=LAT_P50 lat_p99=LAT_P99" \
                 bench.rr --pub 1 --sub 1 --request --reply --msgs "$REQ_MSGS" --size 128 ;;
        subs100k) subs100k $impl "$rnd" "$port" ;;
      esac
    done
  done
  stop_pid "$ref_pid"
  stop_pid "$ours_pid"

  if want cluster; then
    for impl in ref ours; do cluster $impl "$rnd"; done
  fi
  if want conns; then
    for impl in ref ours; do conns $impl "$rnd"; done
  fi
done

say "results ($(($(date +%s) - T0))s)"
echo
$HELPER report "$RESULTS" "$MD_FILE"
[ -n "$MD_FILE" ] && echo && echo "markdown table written to $MD_FILE"
echo "raw results: $RESULTS"
# A failed run (other than our server in the cluster scenario) makes the exit status non-zero.
if awk -F'\t' '$5 == "FAIL" && !($1 == "cluster" && $3 == "ours") {bad = 1} END {exit !bad}' "$RESULTS"; then
  echo "some runs FAILED (details above; outputs in $WORK)" >&2
  exit 1
fi
