#!/usr/bin/env bash
# Fault and endurance benchmarks (not CI tests), driven by bench/gobench (the official Go
# client, nats.go v1.22.1), against the reference server (2.9.10) and ours, side by side.
#
#   kill   3-node cluster of one implementation; a publisher at a steady KILL_RATE on node 1,
#          a subscriber on node 2 and one on node 3 (its server list: node 3, node 1, node 2);
#          `kill -9` of node 3 KILL_AT seconds in. Reports messages published against what
#          the subscriber on the survivor received (must be equal), and how long the client of
#          the killed node took to resume on a survivor: from the kill to its first message
#          received there (nats.go's defaults: it tries the next server of its list at once).
#   soak   one server, 1 publisher -> 1 subscriber for SOAK_MINUTES at half of the peak rate
#          (the peak measured first with a 1 -> 1 run at full speed), the server's RSS sampled
#          every SOAK_EVERY seconds; flags growth (median of the last third of the samples
#          against the first third: more than 5 MiB and 10%). No message may be lost.
#   stuck  one server with monitoring; a raw connection sends CONNECT + `SUB > 1` and never
#          reads; a healthy Go-client subscriber and a publisher at full speed for STUCK_SECS.
#          Reports messages published, what the healthy subscriber got (must be all), when and
#          why the stuck one was cut off (its `reason` in /connz?state=closed), the publisher's
#          rate while the stuck one was still connected (and after), any other connection the
#          server closed, and the server's peak RSS (VmHWM). The reference 2.9.10 cuts the stuck
#          one at write_deadline (~10 s, `Slow Consumer (Write Deadline)`), loses nothing for
#          the healthy one and holds the publisher to ~28k msgs/s meanwhile.
#
# Usage: bench/fault.sh [--only "kill soak stuck"] [--impl "ref ours"]
#
# Environment (defaults in brackets):
#   CASES ["kill soak stuck"]  same as --only
#   IMPLS ["ref ours"]         same as --impl: ref = the reference server, ours = this one
#   KILL_RATE [20000]          msgs/s of the publisher in the kill case
#   KILL_SECS [20]             how long it publishes
#   KILL_AT [5]                seconds into the publishing when node 3 gets kill -9
#   SOAK_MINUTES [10]          length of the soak (decimals allowed)
#   SOAK_RATE                  msgs/s of the soak (default: half of the measured peak)
#   SOAK_PEAK_MSGS [2000000]   messages of the full-speed 1 -> 1 run that measures the peak
#   SOAK_EVERY [10]            seconds between RSS samples
#   STUCK_SECS [15]            how long the publisher runs in the stuck case
#   REF_SERVER [/usr/sbin/nats-server]
#   OURS_SERVER                prebuilt binary of our server: no cargo build (NATS, as for
#                              compare.sh, is accepted and not needed here)
#   GOBENCH                    a prebuilt bench/gobench binary (otherwise built into the work dir)
#
# Every process it starts is stopped on exit. Exit status: non-zero when a message was lost where
# none may be (a survivor's subscriber, the soak, the healthy subscriber) or a case did not run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CASES=${CASES:-kill soak stuck}
IMPLS=${IMPLS:-ref ours}
while [ $# -gt 0 ]; do
  case $1 in
    --only) CASES=$2; shift 2 ;;
    --only=*) CASES=${1#--only=}; shift ;;
    --impl) IMPLS=$2; shift 2 ;;
    --impl=*) IMPLS=${1#--impl=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fault.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
for c in $CASES; do case $c in kill|soak|stuck) ;; *) echo "fault.sh: unknown case $c" >&2; exit 2 ;; esac; done
for i in $IMPLS; do case $i in ref|ours) ;; *) echo "fault.sh: unknown implementation $i (ref, ours)" >&2; exit 2 ;; esac; done

KILL_RATE=${KILL_RATE:-20000}
KILL_SECS=${KILL_SECS:-20}
KILL_AT=${KILL_AT:-5}
SOAK_MINUTES=${SOAK_MINUTES:-10}
SOAK_RATE=${SOAK_RATE:-}
SOAK_PEAK_MSGS=${SOAK_PEAK_MSGS:-2000000}
SOAK_EVERY=${SOAK_EVERY:-10}
STUCK_SECS=${STUCK_SECS:-15}
REF_SERVER=${REF_SERVER:-/usr/sbin/nats-server}
HELPER="python3 $ROOT/bench/helper.py"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf '\nfault.sh: %s\n' "$*" >&2; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; }

# ---------------------------------------------------------------- set-up

if has "$IMPLS" ref && [ ! -x "$REF_SERVER" ]; then
  [ "$REF_SERVER" = /usr/sbin/nats-server ] || die "reference server $REF_SERVER not found"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing the reference server (Debian package nats-server)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
  [ -x "$REF_SERVER" ] || die "apt-get did not install $REF_SERVER"
fi
if has "$IMPLS" ours; then
  if [ -z "${OURS_SERVER:-}" ]; then
    say "building our server (release)"
    cargo build --release -p nats-server
    TARGET=$(cargo metadata --no-deps --format-version 1 |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    OURS_SERVER=$TARGET/release/nats-server
  fi
  [ -x "$OURS_SERVER" ] || die "missing $OURS_SERVER"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nats-fault.XXXXXX")
SUMMARY=$WORK/summary.tsv
: >"$SUMMARY"
BAD=0
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
say "work directory (server logs, driver outputs): $WORK"

if [ -n "${GOBENCH:-}" ]; then
  [ -x "$GOBENCH" ] || die "GOBENCH=$GOBENCH is not executable"
else
  say "building the Go driver (nats.go v1.22.1, GOPATH mode, offline)"
  GOBENCH=$WORK/gobench
  "$ROOT/bench/gobench/build.sh" "$GOBENCH" || die "building bench/gobench failed"
fi

server_bin() { if [ "$1" = ref ]; then echo "$REF_SERVER"; else echo "$OURS_SERVER"; fi; }
impl_name() { if [ "$1" = ref ]; then echo reference; else echo ours; fi; }

# start_server IMPL NAME PORT [FLAGS...]: sets SERVER_PID.
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

# put CASE METRIC IMPL VALUE: one cell of the summary.
put() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$SUMMARY"; }

# gb OUT TIMEOUT ARGS...: runs the Go driver; returns its exit status.
gb() {
  local out=$1 secs=$2
  shift 2
  printf '%s\n' "\$ $GOBENCH $*" >"$out"
  local rc=0
  timeout "$secs" "$GOBENCH" "$@" >>"$out" 2>&1 || rc=$?
  return "$rc"
}

# result OUT KEY: a value of the GOBENCH_RESULT line.
result() { grep '^GOBENCH_RESULT ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

loud() { printf '\n!!!!!!!! %s\n' "$*" >&2; BAD=1; }

show_failure() {
  grep -v '^!! t=' "$1" | grep -E 'FAILED|Subscriber|events|  t=' | sed 's/^/   | /' >&2 || true
}

# ---------------------------------------------------------------- kill -9 of a cluster node

case_kill() {
  local impl=$1 name ports
  name=$(impl_name "$impl")
  say "kill: $name, 3-node cluster, $KILL_RATE msgs/s from node 1 for ${KILL_SECS}s, kill -9 of node 3 at ${KILL_AT}s"
  mapfile -t ports < <($HELPER freeports 6)
  local c1=${ports[0]} c2=${ports[1]} c3=${ports[2]} r1=${ports[3]} r2=${ports[4]} r3=${ports[5]}
  local pids=()
  start_server "$impl" "kill-$impl-n1" "$c1" --cluster_name fault --cluster "nats://127.0.0.1:$r1"
  pids+=("$SERVER_PID")
  start_server "$impl" "kill-$impl-n2" "$c2" --cluster_name fault --cluster "nats://127.0.0.1:$r2" --routes "nats://127.0.0.1:$r1"
  pids+=("$SERVER_PID")
  start_server "$impl" "kill-$impl-n3" "$c3" --cluster_name fault --cluster "nats://127.0.0.1:$r3" --routes "nats://127.0.0.1:$r1"
  pids+=("$SERVER_PID")
  local n3=$SERVER_PID
  if ! $HELPER probe "$c1" "$c2" 15 >/dev/null 2>&1 || ! $HELPER probe "$c1" "$c3" 15 >/dev/null 2>&1 ||
    ! $HELPER probe "$c2" "$c3" 15 >/dev/null 2>&1; then
    loud "kill ($name): the cluster's routes did not come up (logs: $WORK/kill-$impl-n*.log)"
    put kill "status" "$impl" "FAILED: no routes"
  else
    local out=$WORK/kill-$impl.out rc=0
    gb "$out" $((KILL_SECS + 120)) -subject bench.fault -pub-url "nats://127.0.0.1:$c1" \
      -sub-url "nats://127.0.0.1:$c2;nats://127.0.0.1:$c3,nats://127.0.0.1:$c1,nats://127.0.0.1:$c2" \
      -np 1 -ns 2 -ms 128 -rate "$KILL_RATE" -duration "${KILL_SECS}s" \
      -kill-pid "$n3" -kill-after "${KILL_AT}s" -idle 10s -name "fault-$impl" || rc=$?
    local published counts survivor victim resume
    published=$(result "$out" published)
    counts=$(result "$out" sub_counts)
    survivor=${counts%%,*}
    victim=${counts##*,}
    resume=$(result "$out" resume_ms)
    resume=${resume#*:}
    put kill "messages published (node 1)" "$impl" "${published:-?}"
    put kill "received by the subscriber on node 2 (survivor)" "$impl" "${survivor:-?}"
    put kill "survivor's messages lost" "$impl" "$(( ${published:-0} - ${survivor:-0} ))"
    put kill "received by the client of node 3" "$impl" "${victim:-?} (missed $(( ${published:-0} - ${victim:-0} )) while away)"
    put kill "node 3's client: kill -> first message via a survivor (ms)" "$impl" "${resume:-never}"
    put kill "status" "$impl" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")"
    if [ "$rc" -ne 0 ]; then
      loud "kill ($name): FAILED (exit status $rc), output $out"
      show_failure "$out"
    fi
    printf '   kill %-9s published=%s survivor=%s victim=%s resume_ms=%s\n' "$name" "$published" "$survivor" "$victim" "$resume" >&2
  fi
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
}

# ---------------------------------------------------------------- soak

case_soak() {
  local impl=$1 name port spid
  name=$(impl_name "$impl")
  port=$($HELPER freeports 1)
  start_server "$impl" "soak-$impl" "$port"
  spid=$SERVER_PID
  local rate=$SOAK_RATE
  if [ -z "$rate" ]; then
    local peak=$WORK/soak-$impl-peak.out rc=0
    say "soak: $name, measuring the peak (1 -> 1, $SOAK_PEAK_MSGS msgs at full speed)"
    gb "$peak" 300 -s "nats://127.0.0.1:$port" -subject bench.peak -np 1 -ns 1 -n "$SOAK_PEAK_MSGS" -ms 128 || rc=$?
    local sub_rate
    sub_rate=$(result "$peak" sub_rate)
    if [ "$rc" -ne 0 ]; then
      loud "soak ($name): the peak run FAILED (exit $rc; messages lost at full speed), output $peak; using half of its rate anyway"
      show_failure "$peak"
      put soak "peak run (1 -> 1 at full speed)" "$impl" "FAILED: $(result "$peak" sub_counts) of $(result "$peak" expected)"
    fi
    [ -n "$sub_rate" ] && [ "$sub_rate" -gt 0 ] || die "soak ($name): no peak rate measured"
    rate=$((sub_rate / 2))
    put soak "peak msgs/s (1 -> 1, delivered)" "$impl" "$sub_rate"
  fi
  local secs
  secs=$(awk -v m="$SOAK_MINUTES" 'BEGIN {printf "%d", m * 60}')
  say "soak: $name, 1 -> 1 at $rate msgs/s for ${secs}s, RSS every ${SOAK_EVERY}s"
  local out=$WORK/soak-$impl.out rc=0
  gb "$out" $((secs + 300)) -s "nats://127.0.0.1:$port" -subject bench.soak -np 1 -ns 1 -ms 128 \
    -rate "$rate" -duration "${secs}s" -watch-pid "$spid" -watch-every "${SOAK_EVERY}s" -idle 30s || rc=$?
  local samples rss_mib first_third_mib last_third_mib peak_mib growth_mib verdict status published received
  eval "$($HELPER soak-report "$out")"
  put soak "rate (msgs/s) x duration" "$impl" "$rate x ${secs}s"
  put soak "messages published / received" "$impl" "$published / $received"
  put soak "RSS samples (MiB, every ${SOAK_EVERY}s)" "$impl" "$rss_mib"
  put soak "RSS first third -> last third, peak (MiB)" "$impl" "$first_third_mib -> $last_third_mib, peak $peak_mib"
  put soak "verdict" "$impl" "$verdict; delivery $([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")"
  if [ "$rc" -ne 0 ]; then
    loud "soak ($name): messages lost (exit $rc), output $out"
    show_failure "$out"
  fi
  [ "$verdict" = flat ] || loud "soak ($name): RSS $verdict"
  printf '   soak %-9s %s; RSS %s\n' "$name" "$verdict" "$rss_mib" >&2
  stop_pid "$spid"
}

# ---------------------------------------------------------------- stuck subscriber

case_stuck() {
  local impl=$1 name ports
  name=$(impl_name "$impl")
  say "stuck: $name, a subscriber to '>' that never reads, a healthy one, a publisher at full speed for ${STUCK_SECS}s"
  mapfile -t ports < <($HELPER freeports 2)
  local port=${ports[0]} mon=${ports[1]} spid
  start_server "$impl" "stuck-$impl" "$port" -m "$mon"
  spid=$SERVER_PID
  local holdout=$WORK/stuck-$impl-holder.out
  $HELPER stuck "$port" >"$holdout" 2>&1 &
  local holder=$!
  PIDS+=("$holder")
  local i
  for i in $(seq 1 100); do
    grep -q '^ready' "$holdout" && break
    sleep 0.05
  done
  grep -q '^ready' "$holdout" || die "stuck ($name): the raw subscriber did not connect: $(cat "$holdout")"
  sleep 0.2 # its SUB is processed before the publisher starts
  local out=$WORK/stuck-$impl.out series=$WORK/stuck-$impl.series rc=0
  gb "$out" $((STUCK_SECS + 180)) -s "nats://127.0.0.1:$port" -subject bench.stuck -np 1 -ns 1 -ms 128 \
    -duration "${STUCK_SECS}s" -series "$series" -watch-pid "$spid" -watch-every 1s -idle 15s || rc=$?
  local published healthy_received healthy_lost status stuck_cut_after_s stuck_reason
  local pub_rate_while_stuck pub_rate_after_cut="" other_closed peak_rss_mib max_sampled_rss_mib failures=""
  eval "$($HELPER stuck-report "$mon" "$series" "$out")"
  put stuck "messages published" "$impl" "$published"
  put stuck "healthy subscriber received" "$impl" "$healthy_received (lost $healthy_lost)"
  put stuck "stuck one cut off after (s)" "$impl" "${stuck_cut_after_s:-not cut}"
  put stuck "reason (/connz?state=closed)" "$impl" "$stuck_reason"
  put stuck "publisher msgs/s while the stuck one was connected" "$impl" "$pub_rate_while_stuck"
  put stuck "publisher msgs/s after it was cut" "$impl" "${pub_rate_after_cut:-—}"
  put stuck "other connections closed by the server" "$impl" "$other_closed"
  put stuck "server peak RSS (MiB): VmHWM / max of 1 s samples" "$impl" "$peak_rss_mib / $max_sampled_rss_mib"
  put stuck "status" "$impl" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")"
  if [ "$rc" -ne 0 ]; then
    loud "stuck ($name): the healthy subscriber lost messages (exit $rc), output $out"
    show_failure "$out"
  fi
  printf '   stuck %-9s published=%s healthy=%s cut_after=%ss reason=%s pub_rate_while_stuck=%s peak_rss=%sMiB\n' \
    "$name" "$published" "$healthy_received" "$stuck_cut_after_s" "$stuck_reason" "$pub_rate_while_stuck" "$peak_rss_mib" >&2
  stop_pid "$holder"
  stop_pid "$spid"
}

# ---------------------------------------------------------------- run

T0=$(date +%s)
for c in kill soak stuck; do
  has "$CASES" "$c" || continue
  for impl in ref ours; do
    has "$IMPLS" "$impl" || continue
    "case_$c" "$impl"
  done
done

say "results ($(($(date +%s) - T0))s)"
echo
$HELPER side-by-side "$SUMMARY"
echo
echo "outputs and server logs: $WORK"
if [ "$BAD" -ne 0 ]; then
  echo "!!!!!!!! some cases FAILED or flagged (details above)" >&2
  exit 1
fi
