#!/usr/bin/env bash
# Compares our nats-server with the Go reference server (2.9.10), driven by two clients:
#   nats  our `nats bench` (nats-cli),
#   go    bench/gobench, a driver written with the official Go client nats.go v1.22.1 (the
#         client natscli's `nats bench` is built on; Debian's golang-github-nats-io-go-nats-dev,
#         built offline in GOPATH mode by bench/gobench/build.sh).
#
# Both servers run with the same flags on free loopback ports; every pub/sub workload runs with
# each driver against the reference and then ours, round after round (A B A B ...). The table
# shows the median of the rounds per driver and the ratio ours/reference, and next to the
# msgs/s the server's CPU time per million messages: utime+stime of the server process from
# /proc/<pid>/stat before and after the run (the three nodes summed for the cluster, hub and
# leaf for the leaf node run), divided
# by the messages published (requests for request/reply; each subscriber's copies are not
# counted again; the clock-tick resolution, 10 ms per run, makes short runs coarse). On 2 cores
# client and server share the CPU: CPU per message is the figure that carries over to a bigger
# machine. Only ratios from one run mean much on a shared machine.
#
# Every subscriber must receive every message (a queue group: the group together). A run that
# loses a message, on either server with either driver, is recorded as FAILED, listed loudly
# under the table, and makes the exit status non-zero.
#
# Usage: bench/compare.sh [--md FILE] [--rounds N] [--only "pub16 ps11 ..."] [--drivers "nats go"]
#
# Environment (defaults in brackets):
#   ROUNDS [3]            rounds of every workload
#   BENCH_MD              also write the table as markdown to this file (same as --md)
#   SCENARIOS [all]       subset, space separated: pub16 pub128 ps11 fan5 ps44 queue3 reqrep
#                         subs100k cluster gateway leaf conns ws11 jspub-sync jspub-async jsconsume
#   DRIVERS ["nats go"]   which drivers run the pub/sub scenarios (same as --drivers)
#   PUB_MSGS [1000000]    messages for publish-only runs
#   PS_MSGS [500000]      messages for 1->1, queue group and the 100k-subscription run
#   FAN_MSGS [200000]     messages for 1->5 (each subscriber receives all of them)
#   MANY_MSGS [200000]    messages for 4->4 (split over the publishers; each sub gets all)
#   REQ_MSGS [20000]      request/reply round trips
#   CLUSTER_MSGS [300000] messages through the 3-node cluster (pub on node 1, sub on node 2)
#   WS_MSGS [500000]      messages for 1->1 over websocket (both clients on ws://, each server
#                         with `websocket { no_tls: true }`)
#   GATEWAY_MSGS [300000] messages from one cluster to another over a gateway (two one-server
#                         clusters, A dials B; pub on A, sub on B)
#   LEAF_MSGS [300000]    messages from a hub to its leaf node (pub on the hub, sub on the leaf;
#                         both servers of one kind)
#   JS_SYNC_MSGS [20000]  jspub-sync: messages published into a file stream, each publish
#                         waiting for its PubAck (`nats bench --js --syncpub`, gobench -js syncpub)
#   JS_PUB_MSGS [1000000] jspub-async: messages published into a file and then a memory stream
#                         with 100 PubAcks in flight (`nats bench --js`: batches of --pubbatch 100
#                         whose acks are awaited together; gobench -js asyncpub: PublishAsync
#                         with PublishAsyncMaxPending 100, then PublishAsyncComplete)
#   JS_CONSUME_MSGS [1000000]
#                         jsconsume: messages stored first (by our `nats bench --js`, not
#                         measured), then fetched 100 at a time by a durable pull consumer and
#                         each acked (`nats bench --js --sub 1 --pull`, gobench -js consume),
#                         file and memory streams
#                         Every JetStream run gets a fresh server with -js and its own store
#                         directory; a publish run fails unless the stream then holds exactly the
#                         messages published, a consume run unless every message was received
#                         (gobench also checks that the consumer has no ack pending).
#   CONNS [10000]         idle connections for the memory measurement
#   SUBS [100000]         subscriptions installed by the idle client (WILDCARD_PCT [10] % wildcards)
#   BENCH_TIMEOUT [120]   seconds before a single bench run counts as hung
#   GO_IDLE [10s]         the Go driver gives up once its subscribers made no progress for this
#                         long after the publishers finished (then it reports what each got)
#   KEEP_GOING [0]        1: a failed run is recorded as FAILED and the script goes on
#                         (a failure of our server in the cluster scenario never aborts)
#   REF_SERVER [/usr/sbin/nats-server]
#   OURS_SERVER, NATS     prebuilt binaries of our server and `nats`; when both are given the
#                         cargo build is skipped (otherwise: cargo build --release)
#   GOBENCH               a prebuilt bench/gobench binary (otherwise built into the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${ROUNDS:-3}
MD_FILE=${BENCH_MD:-}
SCENARIOS=${SCENARIOS:-all}
DRIVERS=${DRIVERS:-nats go}
while [ $# -gt 0 ]; do
  case $1 in
    --md) MD_FILE=$2; shift 2 ;;
    --md=*) MD_FILE=${1#--md=}; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#--rounds=}; shift ;;
    --only) SCENARIOS=$2; shift 2 ;;
    --only=*) SCENARIOS=${1#--only=}; shift ;;
    --drivers) DRIVERS=$2; shift 2 ;;
    --drivers=*) DRIVERS=${1#--drivers=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case $ROUNDS in ''|*[!0-9]*|0) echo "compare.sh: ROUNDS must be a positive integer" >&2; exit 2 ;; esac
[ "$SCENARIOS" = all ] && SCENARIOS="pub16 pub128 ps11 fan5 ps44 queue3 reqrep subs100k cluster gateway leaf conns ws11 jspub-sync jspub-async jsconsume"
for d in $DRIVERS; do
  case $d in nats|go) ;; *) echo "compare.sh: unknown driver $d (nats, go)" >&2; exit 2 ;; esac
done

PUB_MSGS=${PUB_MSGS:-1000000}
PS_MSGS=${PS_MSGS:-500000}
FAN_MSGS=${FAN_MSGS:-200000}
MANY_MSGS=${MANY_MSGS:-200000}
REQ_MSGS=${REQ_MSGS:-20000}
CLUSTER_MSGS=${CLUSTER_MSGS:-300000}
WS_MSGS=${WS_MSGS:-500000}
GATEWAY_MSGS=${GATEWAY_MSGS:-300000}
LEAF_MSGS=${LEAF_MSGS:-300000}
JS_SYNC_MSGS=${JS_SYNC_MSGS:-20000}
JS_PUB_MSGS=${JS_PUB_MSGS:-1000000}
JS_CONSUME_MSGS=${JS_CONSUME_MSGS:-1000000}
CONNS=${CONNS:-10000}
SUBS=${SUBS:-100000}
WILDCARD_PCT=${WILDCARD_PCT:-10}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
GO_IDLE=${GO_IDLE:-10s}
KEEP_GOING=${KEEP_GOING:-0}
REF_SERVER=${REF_SERVER:-/usr/sbin/nats-server}
HELPER="python3 $ROOT/bench/helper.py"
export PUB_MSGS PS_MSGS FAN_MSGS MANY_MSGS REQ_MSGS CLUSTER_MSGS GATEWAY_MSGS LEAF_MSGS WS_MSGS CONNS SUBS WILDCARD_PCT \
  JS_SYNC_MSGS JS_PUB_MSGS JS_CONSUME_MSGS # for the labels

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf '\ncompare.sh: %s\n' "$*" >&2; exit 1; }
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
uses() { [[ " $DRIVERS " == *" $1 "* ]]; }

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

if [ -n "${OURS_SERVER:-}" ] && [ -n "${NATS:-}" ]; then
  say "using prebuilt binaries: OURS_SERVER=$OURS_SERVER NATS=$NATS (no cargo build)"
else
  say "building release binaries"
  cargo build --release -p nats-server -p nats-cli
  TARGET=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  OURS_SERVER=${OURS_SERVER:-$TARGET/release/nats-server}
  NATS=${NATS:-$TARGET/release/nats}
fi
for b in "$OURS_SERVER" "$NATS"; do [ -x "$b" ] || die "missing $b"; done
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
FAILURES=$WORK/failures.tsv
: >"$RESULTS"
: >"$FAILURES"
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

if uses go; then
  if [ -n "${GOBENCH:-}" ]; then
    [ -x "$GOBENCH" ] || die "GOBENCH=$GOBENCH is not executable"
  else
    say "building the Go driver (nats.go v1.22.1, GOPATH mode, offline)"
    GOBENCH=$WORK/gobench
    "$ROOT/bench/gobench/build.sh" "$GOBENCH" || die "building bench/gobench failed"
  fi
fi

CLK_TCK=$(getconf CLK_TCK)

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

# cpu_ticks PID...: utime+stime (clock ticks) of the processes, summed.
cpu_ticks() {
  local pid stat rest total=0
  for pid in "$@"; do
    stat=$(<"/proc/$pid/stat") || return 1
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# cpu_per_million BEFORE AFTER MSGS: server CPU seconds per million messages.
cpu_per_million() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN {printf "%.3f", (b - a) / hz / n * 1e6}'
}

# ---------------------------------------------------------------- runs and results

# record SCEN DRIVER METRIC IMPL ROUND VALUE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$RESULTS"; }

# fail_run SCEN DRIVER IMPL ROUND WHAT OUTFILE METRICS...: report, record FAILED, maybe abort.
fail_run() {
  local scen=$1 drv=$2 impl=$3 rnd=$4 what=$5 out=$6 m
  shift 6
  {
    printf '\n!!!!!!!! FAILED: %s, driver %s, %s server, round %s: %s\n' \
      "$scen" "$drv" "$(impl_name "$impl")" "$rnd" "$what"
    if [ -n "$out" ] && [ -f "$out" ]; then
      printf '!! output (%s):\n' "$out"
      grep -v '^!! t=' "$out" | tail -n 15 | sed 's/^/   | /'
    fi
  } >&2
  printf '%s\t%s\t%s\t%s\t%s\n' "$scen" "$drv" "$impl" "$rnd" "$what" >>"$FAILURES"
  for m in "$@"; do record "$scen" "$drv" "$m" "$impl" "$rnd" FAIL; done
  if [ "$KEEP_GOING" != 1 ] && ! { [ "$scen" = cluster ] && [ "$impl" = ours ]; }; then
    die "benchmark run failed (set KEEP_GOING=1 to record it as FAILED and continue)"
  fi
}

# run_cmd OUTFILE CMD...: runs one bench command with the timeout; sets BENCH_ERR on failure.
run_cmd() {
  local out=$1
  shift
  printf '%s\n' "\$ $*" >"$out"
  local rc=0
  timeout "$BENCH_TIMEOUT" "$@" >>"$out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    BENCH_ERR="exit status $rc$([ "$rc" -eq 124 ] && echo " (timed out after ${BENCH_TIMEOUT}s)")"
    return 1
  fi
  return 0
}

# parse_out DRIVER OUTFILE: sets PUB_RATE SUB_RATE LAT_P50 LAT_P99 LOST.
parse_out() {
  if [ "$1" = go ]; then
    eval "$($HELPER parse-go "$2")"
  else
    eval "$($HELPER parse "$2")"
  fi
}

# The two drivers' arguments for one workload. Sets ARGS (array), MSGS (the messages the
# CPU time is divided by) and PAIRS ("metric=VAR ...", the first one gets the CPU column).
# workload DRIVER SCEN
workload() {
  local drv=$1 scen=$2
  case $drv:$scen in
    nats:pub16) ARGS=(bench.pub --pub 1 --msgs "$PUB_MSGS" --size 16) ;;
    go:pub16) ARGS=(-np 1 -ns 0 -n "$PUB_MSGS" -ms 16) ;;
    nats:pub128) ARGS=(bench.pub --pub 1 --msgs "$PUB_MSGS" --size 128) ;;
    go:pub128) ARGS=(-np 1 -ns 0 -n "$PUB_MSGS" -ms 128) ;;
    nats:ps11 | nats:subs100k) ARGS=(bench.ps --pub 1 --sub 1 --msgs "$PS_MSGS" --size 128) ;;
    go:ps11 | go:subs100k) ARGS=(-np 1 -ns 1 -n "$PS_MSGS" -ms 128) ;;
    nats:fan5) ARGS=(bench.fan --pub 1 --sub 5 --msgs "$FAN_MSGS" --size 128) ;;
    go:fan5) ARGS=(-np 1 -ns 5 -n "$FAN_MSGS" -ms 128) ;;
    nats:ps44) ARGS=(bench.many --pub 4 --sub 4 --msgs "$MANY_MSGS" --size 128) ;;
    go:ps44) ARGS=(-np 4 -ns 4 -n "$MANY_MSGS" -ms 128) ;;
    nats:queue3) ARGS=(bench.q --pub 1 --sub 3 --queue benchq --msgs "$PS_MSGS" --size 128) ;;
    go:queue3) ARGS=(-np 1 -ns 3 -queue benchq -n "$PS_MSGS" -ms 128) ;;
    nats:reqrep) ARGS=(bench.rr --pub 1 --sub 1 --request --reply --msgs "$REQ_MSGS" --size 128) ;;
    nats:ws11) ARGS=(bench.ws --pub 1 --sub 1 --msgs "$WS_MSGS" --size 128) ;;
    go:ws11) ARGS=(-np 1 -ns 1 -n "$WS_MSGS" -ms 128) ;;
    go:reqrep) ARGS=(-request -np 1 -ns 1 -n "$REQ_MSGS" -ms 128) ;;
    *) die "no workload $scen for driver $drv" ;;
  esac
  case $scen in
    pub16 | pub128) MSGS=$PUB_MSGS PAIRS="pub_rate=PUB_RATE" ;;
    ps11) MSGS=$PS_MSGS PAIRS="sub_rate=SUB_RATE load_p50=LAT_P50 load_p99=LAT_P99" ;;
    ws11) MSGS=$WS_MSGS PAIRS="sub_rate=SUB_RATE" ;;
    subs100k | queue3) MSGS=$PS_MSGS PAIRS="sub_rate=SUB_RATE" ;;
    fan5) MSGS=$FAN_MSGS PAIRS="sub_rate=SUB_RATE" ;;
    ps44) MSGS=$MANY_MSGS PAIRS="sub_rate=SUB_RATE" ;;
    reqrep) MSGS=$REQ_MSGS PAIRS="req_rate=PUB_RATE lat_p50=LAT_P50 lat_p99=LAT_P99" ;;
  esac
}

# driver_cmd DRIVER PUB_PORT SUB_PORT ARGS...: sets CMD (array). URL_SCHEME [nats]: ws for
# the websocket scenario.
driver_cmd() {
  local drv=$1 pport=$2 sport=$3 scheme=${URL_SCHEME:-nats}
  shift 3
  if [ "$drv" = go ]; then
    CMD=("$GOBENCH" -pub-url "$scheme://127.0.0.1:$pport" -sub-url "$scheme://127.0.0.1:$sport"
      -idle "$GO_IDLE" -subject "bench.go" "$@")
  else
    CMD=("$NATS" -s "$scheme://127.0.0.1:$pport" bench "$@" --no-progress)
  fi
}

# record_pairs SCEN DRIVER IMPL ROUND OUT CPU: records the metrics of PAIRS (after parse_out)
# and the CPU figure; a missing metric fails the run.
record_pairs() {
  local scen=$1 drv=$2 impl=$3 rnd=$4 out=$5 cpu=$6 pair metrics=() s=""
  for pair in $PAIRS; do metrics+=("${pair%%=*}"); done
  for pair in $PAIRS; do
    local var=${pair##*=}
    if [ -z "${!var}" ]; then
      fail_run "$scen" "$drv" "$impl" "$rnd" "no ${pair%%=*} in the output" "$out" "${metrics[@]}" cpu
      return 0
    fi
  done
  for pair in $PAIRS; do
    local var=${pair##*=}
    record "$scen" "$drv" "${pair%%=*}" "$impl" "$rnd" "${!var}"
    s+="${pair%%=*}=${!var} "
  done
  record "$scen" "$drv" cpu "$impl" "$rnd" "$cpu"
  printf '   %-9s %-5s %-9s %scpu_s_per_M=%s\n' "$scen" "$drv" "$(impl_name "$impl")" "$s" "$cpu" >&2
}

# run_simple SCEN DRIVER IMPL ROUND PORT SERVER_PID: one single-server workload.
run_simple() {
  local scen=$1 drv=$2 impl=$3 rnd=$4 port=$5 spid=$6 pair metrics=()
  workload "$drv" "$scen"
  for pair in $PAIRS; do metrics+=("${pair%%=*}"); done
  local out=$WORK/r$rnd-$scen-$drv-$impl.out
  driver_cmd "$drv" "$port" "$port" "${ARGS[@]}"
  local before after
  before=$(cpu_ticks "$spid")
  if ! run_cmd "$out" "${CMD[@]}"; then
    parse_out "$drv" "$out"
    fail_run "$scen" "$drv" "$impl" "$rnd" "$BENCH_ERR${LOST:+: $LOST}: ${CMD[*]}" "$out" "${metrics[@]}" cpu
    return 0
  fi
  after=$(cpu_ticks "$spid")
  parse_out "$drv" "$out"
  if [ -n "$LOST" ]; then
    fail_run "$scen" "$drv" "$impl" "$rnd" "incomplete delivery ($LOST): ${CMD[*]}" "$out" "${metrics[@]}" cpu
    return 0
  fi
  record_pairs "$scen" "$drv" "$impl" "$rnd" "$out" "$(cpu_per_million "$before" "$after" "$MSGS")"
}

# ---------------------------------------------------------------- scenarios

subs100k() {
  local impl=$1 rnd=$2 port=$3 spid=$4 drv
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
    for drv in $DRIVERS; do
      fail_run subs100k "$drv" "$impl" "$rnd" "installing $SUBS subscriptions failed" "$out" sub_rate cpu
    done
    return 0
  fi
  record subs100k - install_ms "$impl" "$rnd" "$(awk '/^ready/ {print $2}' "$out")"
  for drv in $DRIVERS; do
    run_simple subs100k "$drv" "$impl" "$rnd" "$port" "$spid"
  done
  if ! kill -0 "$holder" 2>/dev/null; then
    fail_run subs100k - "$impl" "$rnd" "the subscription holder lost its connection" "$out" install_ms
  fi
  stop_pid "$holder"
}

# The cluster runs once per server and round; both drivers use it (pub node 1, sub node 2).
cluster() {
  local impl=$1 rnd=$2
  local ports
  mapfile -t ports < <($HELPER freeports 6)
  local c1=${ports[0]} c2=${ports[1]} c3=${ports[2]} r1=${ports[3]} r2=${ports[4]} r3=${ports[5]}
  local common=(--cluster_name bench)
  local pids=() drv
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
    for drv in $DRIVERS; do
      fail_run cluster "$drv" "$impl" "$rnd" "routes did not come up (node 1 -> node 2); server logs: $WORK/r$rnd-cluster-$impl-n*.log" \
        "$probe" sub_rate cpu
    done
  else
    for drv in $DRIVERS; do
      if [ "$drv" = go ]; then
        cluster_go cluster "$CLUSTER_MSGS" "$impl" "$rnd" "$c1" "$c2" "${pids[@]}"
      else
        cluster_nats cluster "$CLUSTER_MSGS" "$impl" "$rnd" "$c1" "$c2" "${pids[@]}"
      fi
    done
  fi
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
}

# Two one-server clusters joined by a gateway (A dials B), once per server and round; both
# drivers publish on A and subscribe on B.
gateway() {
  local impl=$1 rnd=$2
  local ports
  mapfile -t ports < <($HELPER freeports 4)
  local c1=${ports[0]} c2=${ports[1]} g1=${ports[2]} g2=${ports[3]}
  local ca=$WORK/r$rnd-gateway-$impl-a.conf cb=$WORK/r$rnd-gateway-$impl-b.conf
  printf 'gateway { name: B, listen: "127.0.0.1:%s" }\n' "$g2" >"$cb"
  printf 'gateway { name: A, listen: "127.0.0.1:%s", gateways: [{name: B, url: "nats://127.0.0.1:%s"}] }\n' \
    "$g1" "$g2" >"$ca"
  local pids=() drv
  start_server "$impl" "r$rnd-gateway-$impl-b" "$c2" -c "$cb"
  pids+=("$SERVER_PID")
  start_server "$impl" "r$rnd-gateway-$impl-a" "$c1" -c "$ca"
  pids+=("$SERVER_PID")
  local probe=$WORK/r$rnd-gateway-$impl-probe.out
  if ! $HELPER probe "$c1" "$c2" 15 >"$probe" 2>&1; then
    for drv in $DRIVERS; do
      fail_run gateway "$drv" "$impl" "$rnd" "the gateway did not come up (A -> B); server logs: $WORK/r$rnd-gateway-$impl-*.log" \
        "$probe" sub_rate cpu
    done
  else
    for drv in $DRIVERS; do
      if [ "$drv" = go ]; then
        cluster_go gateway "$GATEWAY_MSGS" "$impl" "$rnd" "$c1" "$c2" "${pids[@]}"
      else
        cluster_nats gateway "$GATEWAY_MSGS" "$impl" "$rnd" "$c1" "$c2" "${pids[@]}"
      fi
    done
  fi
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
}

# cluster_go SCEN MSGS IMPL ROUND PUB_PORT SUB_PORT PID...
cluster_go() {
  local scen=$1 msgs=$2 impl=$3 rnd=$4 c1=$5 c2=$6
  shift 6
  local out=$WORK/r$rnd-$scen-go-$impl.out before after
  PAIRS="sub_rate=SUB_RATE"
  driver_cmd go "$c1" "$c2" -np 1 -ns 1 -n "$msgs" -ms 128
  before=$(cpu_ticks "$@")
  if ! run_cmd "$out" "${CMD[@]}"; then
    parse_out go "$out"
    fail_run "$scen" go "$impl" "$rnd" "$BENCH_ERR${LOST:+: $LOST}: ${CMD[*]}" "$out" sub_rate cpu
    return 0
  fi
  after=$(cpu_ticks "$@")
  parse_out go "$out"
  if [ -n "$LOST" ]; then
    fail_run "$scen" go "$impl" "$rnd" "incomplete delivery ($LOST): ${CMD[*]}" "$out" sub_rate cpu
    return 0
  fi
  record_pairs "$scen" go "$impl" "$rnd" "$out" "$(cpu_per_million "$before" "$after" "$msgs")"
}

# cluster_nats SCEN MSGS IMPL ROUND PUB_PORT SUB_PORT PID...
cluster_nats() {
  local scen=$1 msgs=$2 impl=$3 rnd=$4 c1=$5 c2=$6
  shift 6
  # Subscriber on node 2 in the background, publisher on node 1; the subscriber's rate counts.
  local subout=$WORK/r$rnd-$scen-nats-$impl-sub.out pubout=$WORK/r$rnd-$scen-nats-$impl-pub.out
  local subcmd=("$NATS" -s "nats://127.0.0.1:$c2" bench bench.cl --sub 1 --msgs "$msgs" --size 128 --no-progress)
  local before after subrc=0
  before=$(cpu_ticks "$@")
  printf '%s\n' "\$ ${subcmd[*]}" >"$subout"
  timeout "$BENCH_TIMEOUT" "${subcmd[@]}" >>"$subout" 2>&1 &
  local subpid=$!
  PIDS+=("$subpid")
  sleep 1 # let the subscription reach node 1 (over the route or the gateway)
  driver_cmd nats "$c1" "$c1" bench.cl --pub 1 --msgs "$msgs" --size 128
  if ! run_cmd "$pubout" "${CMD[@]}"; then
    stop_pid "$subpid"
    fail_run "$scen" nats "$impl" "$rnd" "publisher on node 1: $BENCH_ERR: ${CMD[*]}" "$pubout" sub_rate cpu
    return 0
  fi
  wait "$subpid" || subrc=$?
  after=$(cpu_ticks "$@")
  parse_out nats "$subout"
  if [ "$subrc" -ne 0 ]; then
    fail_run "$scen" nats "$impl" "$rnd" "subscriber on node 2: exit status $subrc: ${subcmd[*]}" "$subout" sub_rate cpu
  elif [ -n "$LOST" ] || [ -z "$SUB_RATE" ]; then
    fail_run "$scen" nats "$impl" "$rnd" "subscriber on node 2: incomplete delivery (${LOST:-no Sub stats}): ${subcmd[*]}" \
      "$subout" sub_rate cpu
  else
    PAIRS="sub_rate=SUB_RATE"
    record_pairs "$scen" nats "$impl" "$rnd" "$subout" "$(cpu_per_million "$before" "$after" "$msgs")"
  fi
}

# 1 -> 1 over websocket: each server with a websocket listener (no TLS, no compression,
# the same config file for both), both clients on ws:// URLs.
ws11() {
  local impl=$1 rnd=$2 ports drv
  mapfile -t ports < <($HELPER freeports 2)
  local conf=$WORK/r$rnd-ws11-$impl.conf
  printf 'websocket {\n  port: %s\n  no_tls: true\n}\n' "${ports[1]}" >"$conf"
  start_server "$impl" "r$rnd-ws11-$impl" "${ports[0]}" -c "$conf"
  local pid=$SERVER_PID
  for drv in $DRIVERS; do
    URL_SCHEME=ws run_simple ws11 "$drv" "$impl" "$rnd" "${ports[1]}" "$pid"
  done
  stop_pid "$pid"
}

# A hub and its leaf node (the same server kind); publisher on the hub, subscriber on the leaf.
leaf() {
  local impl=$1 rnd=$2
  local ports
  mapfile -t ports < <($HELPER freeports 3)
  local c1=${ports[0]} c2=${ports[1]} lp=${ports[2]}
  local hubconf=$WORK/r$rnd-leaf-$impl-hub.conf leafconf=$WORK/r$rnd-leaf-$impl-leaf.conf
  printf 'leafnodes { listen: "127.0.0.1:%s" }\n' "$lp" >"$hubconf"
  printf 'leafnodes { remotes [ { url: "nats://127.0.0.1:%s" } ] }\n' "$lp" >"$leafconf"
  local pids=() drv
  start_server "$impl" "r$rnd-leaf-$impl-hub" "$c1" -c "$hubconf"
  pids+=("$SERVER_PID")
  start_server "$impl" "r$rnd-leaf-$impl-leaf" "$c2" -c "$leafconf"
  pids+=("$SERVER_PID")
  local probe=$WORK/r$rnd-leaf-$impl-probe.out
  if ! $HELPER probe "$c1" "$c2" 15 >"$probe" 2>&1; then
    for drv in $DRIVERS; do
      fail_run leaf "$drv" "$impl" "$rnd" "the leaf connection did not come up (hub -> leaf); server logs: $WORK/r$rnd-leaf-$impl-*.log" \
        "$probe" sub_rate cpu
    done
  else
    for drv in $DRIVERS; do
      if [ "$drv" = go ]; then
        cluster_go leaf "$LEAF_MSGS" "$impl" "$rnd" "$c1" "$c2" "${pids[@]}"
      else
        cluster_nats leaf "$LEAF_MSGS" "$impl" "$rnd" "$c1" "$c2" "${pids[@]}"
      fi
    done
  fi
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
}

# ---------------------------------------------------------------- JetStream

# js_run SCEN STORAGE DRIVER IMPL ROUND: one JetStream run on a fresh server with -js and its
# own store directory (removed afterwards). SCEN: jspub-sync, jspub-async or jsconsume; the
# results are recorded as SCEN-STORAGE.
js_run() {
  local scen=$1 storage=$2 drv=$3 impl=$4 rnd=$5 port key=$1-$2
  port=$($HELPER freeports 1)
  local name=r$rnd-$key-$drv-$impl
  local store=$WORK/$name.store out=$WORK/$name.out
  start_server "$impl" "$name" "$port" -js -sd "$store"
  local spid=$SERVER_PID url=nats://127.0.0.1:$port msgs metric var stored=""
  case $scen in
    jspub-sync) msgs=$JS_SYNC_MSGS metric=pub_rate var=PUB_RATE ;;
    jspub-async) msgs=$JS_PUB_MSGS metric=pub_rate var=PUB_RATE ;;
    jsconsume) msgs=$JS_CONSUME_MSGS metric=sub_rate var=SUB_RATE ;;
  esac
  local nats_js=(bench js.bench --js --storage "$storage" --msgs "$msgs" --size 128 --no-progress)
  if [ "$scen" = jsconsume ]; then
    # Store the messages first (not measured).
    local fill=$WORK/$name-fill.out
    if ! run_cmd "$fill" "$NATS" -s "$url" "${nats_js[@]}" --pub 1 --purge; then
      fail_run "$key" "$drv" "$impl" "$rnd" "storing $msgs messages first: $BENCH_ERR" "$fill" "$metric" cpu
      stop_pid "$spid"; rm -rf "$store"; return 0
    fi
    stored=$($HELPER stream-msgs "$port" benchstream 2>&1) || true
    if [ "$stored" != "$msgs" ]; then
      fail_run "$key" "$drv" "$impl" "$rnd" "the stream holds $stored messages after storing $msgs" "$fill" "$metric" cpu
      stop_pid "$spid"; rm -rf "$store"; return 0
    fi
  fi
  case $drv:$scen in
    nats:jspub-sync) CMD=("$NATS" -s "$url" "${nats_js[@]}" --pub 1 --syncpub --purge) ;;
    nats:jspub-async) CMD=("$NATS" -s "$url" "${nats_js[@]}" --pub 1 --pubbatch 100 --purge) ;;
    nats:jsconsume) CMD=("$NATS" -s "$url" "${nats_js[@]}" --sub 1 --pull --consumerbatch 100) ;;
    go:jspub-sync) CMD=("$GOBENCH" -s "$url" -subject js.bench -js syncpub -storage "$storage" -np 1 -n "$msgs" -ms 128) ;;
    go:jspub-async) CMD=("$GOBENCH" -s "$url" -subject js.bench -js asyncpub -window 100 -storage "$storage" -np 1 -n "$msgs" -ms 128) ;;
    go:jsconsume) CMD=("$GOBENCH" -s "$url" -js consume -bind -batch 100 -np 0 -ns 1 -n "$msgs" -ms 128) ;;
  esac
  local before after
  before=$(cpu_ticks "$spid")
  if ! run_cmd "$out" "${CMD[@]}"; then
    parse_out "$drv" "$out"
    fail_run "$key" "$drv" "$impl" "$rnd" "$BENCH_ERR${LOST:+: $LOST}: ${CMD[*]}" "$out" "$metric" cpu
    stop_pid "$spid"; rm -rf "$store"; return 0
  fi
  after=$(cpu_ticks "$spid")
  parse_out "$drv" "$out"
  if [ -n "$LOST" ]; then
    fail_run "$key" "$drv" "$impl" "$rnd" "incomplete ($LOST): ${CMD[*]}" "$out" "$metric" cpu
  elif [ "$scen" != jsconsume ] && stored=$($HELPER stream-msgs "$port" benchstream 2>&1) && [ "$stored" != "$msgs" ]; then
    fail_run "$key" "$drv" "$impl" "$rnd" "the stream holds $stored messages, $msgs were published: ${CMD[*]}" "$out" "$metric" cpu
  elif [ "$scen" != jsconsume ] && [ "$stored" != "$msgs" ]; then
    fail_run "$key" "$drv" "$impl" "$rnd" "stream info after publishing failed: $stored" "$out" "$metric" cpu
  else
    PAIRS="$metric=$var"
    record_pairs "$key" "$drv" "$impl" "$rnd" "$out" "$(cpu_per_million "$before" "$after" "$msgs")"
  fi
  stop_pid "$spid"
  rm -rf "$store"
}

conns() {
  local impl=$1 rnd=$2 port
  port=$($HELPER freeports 1)
  start_server "$impl" "r$rnd-conns-$impl" "$port"
  local pid=$SERVER_PID out=$WORK/r$rnd-conns-$impl.out
  if $HELPER conns "$port" "$CONNS" "$pid" >"$out" 2>&1 && kill -0 "$pid" 2>/dev/null; then
    local rss_before_kb rss_after_kb open_secs
    eval "$(tail -n 1 "$out")"
    record conns - rss_idle "$impl" "$rnd" "$(awk -v a="$rss_before_kb" 'BEGIN {printf "%.2f", a / 1024}')"
    record conns - rss_conns "$impl" "$rnd" "$(awk -v a="$rss_after_kb" 'BEGIN {printf "%.2f", a / 1024}')"
    record conns - per_conn "$impl" "$rnd" \
      "$(awk -v a="$rss_after_kb" -v b="$rss_before_kb" -v n="$CONNS" 'BEGIN {printf "%.3f", (a - b) / n}')"
    record conns - open_s "$impl" "$rnd" "$open_secs"
    printf '   %-9s %-5s %-9s RSS %s -> %s KiB (%ss to open)\n' conns - "$(impl_name "$impl")" \
      "$rss_before_kb" "$rss_after_kb" "$open_secs" >&2
  else
    fail_run conns - "$impl" "$rnd" "opening $CONNS idle connections failed" "$out" rss_idle rss_conns per_conn
  fi
  stop_pid "$pid"
}

# ---------------------------------------------------------------- rounds

T0=$(date +%s)
declare -A PORT SPID
for rnd in $(seq 1 "$ROUNDS"); do
  say "round $rnd of $ROUNDS"
  mapfile -t ports < <($HELPER freeports 2)
  start_server ref "r$rnd-ref" "${ports[0]}"
  SPID[ref]=$SERVER_PID
  start_server ours "r$rnd-ours" "${ports[1]}"
  SPID[ours]=$SERVER_PID
  PORT=([ref]=${ports[0]} [ours]=${ports[1]})

  for scen in pub16 pub128 ps11 fan5 ps44 queue3 reqrep; do
    want "$scen" || continue
    for drv in $DRIVERS; do
      for impl in ref ours; do
        run_simple "$scen" "$drv" "$impl" "$rnd" "${PORT[$impl]}" "${SPID[$impl]}"
      done
    done
  done
  if want subs100k; then
    for impl in ref ours; do subs100k "$impl" "$rnd" "${PORT[$impl]}" "${SPID[$impl]}"; done
  fi
  stop_pid "${SPID[ref]}"
  stop_pid "${SPID[ours]}"

  if want cluster; then
    for impl in ref ours; do cluster "$impl" "$rnd"; done
  fi
  if want gateway; then
    for impl in ref ours; do gateway "$impl" "$rnd"; done
  fi
  if want leaf; then
    for impl in ref ours; do leaf "$impl" "$rnd"; done
  fi
  if want conns; then
    for impl in ref ours; do conns "$impl" "$rnd"; done
  fi
  if want ws11; then
    for impl in ref ours; do ws11 "$impl" "$rnd"; done
  fi
  for scen in jspub-sync jspub-async jsconsume; do
    want "$scen" || continue
    storages="file memory"
    [ "$scen" = jspub-sync ] && storages=file
    for storage in $storages; do
      for drv in $DRIVERS; do
        for impl in ref ours; do js_run "$scen" "$storage" "$drv" "$impl" "$rnd"; done
      done
    done
  done
done

say "results ($(($(date +%s) - T0))s)"
echo
DRIVER_NOTE="nats = our \`nats bench\`"
uses go && DRIVER_NOTE+="; go = bench/gobench, $("$GOBENCH" -version 2>/dev/null || echo nats.go)"
export DRIVER_NOTE
$HELPER report "$RESULTS" "$MD_FILE" "$FAILURES"
[ -n "$MD_FILE" ] && echo && echo "markdown table written to $MD_FILE"
echo "raw results: $RESULTS"
# A failed run (other than our server in the cluster scenario) makes the exit status non-zero.
if awk -F'\t' '$6 == "FAIL" && !($1 == "cluster" && $4 == "ours") {bad = 1} END {exit !bad}' "$RESULTS"; then
  echo "some runs FAILED (details above; outputs in $WORK)" >&2
  exit 1
fi
