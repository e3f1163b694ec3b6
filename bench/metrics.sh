#!/usr/bin/env bash
# What a /metrics scrape costs on a server holding many connections, and whether message
# delivery stalls while scrapes run.
#
#  1. Starts our server (release build) on free loopback ports and opens CONNS idle client
#     connections (bench/metrics.py hold; they answer the server's PINGs).
#  2. Times SCRAPES sequential scrapes of /metrics (the classic text format, as with curl),
#     and for comparison of /varz and of /connz (its default page of 1024 connections, which
#     /metrics also reads).
#  3. Times the round trip of a message through the server (publisher and subscriber on one
#     connection, 1,000 messages a second) for PROBE_SECS seconds with no scrapes, then for
#     PROBE_SECS seconds while another process scrapes /metrics back to back. A delivery stall
#     would show as a maximum round trip near a scrape's duration.
#
# Usage: bench/metrics.sh
# Environment (defaults in brackets):
#   CONNS [10000]       idle connections held open during the measurements
#   SCRAPES [20]        sequential scrapes timed per endpoint
#   PROBE_SECS [10]     seconds of each latency phase
#   OURS_SERVER         a prebuilt server binary (otherwise: cargo build --release -p nats-server)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONNS=${CONNS:-10000}
SCRAPES=${SCRAPES:-20}
PROBE_SECS=${PROBE_SECS:-10}
PY=(python3 "$ROOT/bench/metrics.py")

if [ -z "${OURS_SERVER:-}" ]; then
  cargo build --release -q -p nats-server
  OURS_SERVER=$ROOT/target/release/nats-server
fi

# Every connection is a descriptor on both ends.
want=$((CONNS * 2 + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

read -r PORT MPORT < <(python3 "$ROOT/bench/helper.py" freeports 2 | paste -sd' ')
"$OURS_SERVER" -a 127.0.0.1 -p "$PORT" -m "$MPORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
python3 "$ROOT/bench/helper.py" wait-ready "$PORT" 10
URL=http://127.0.0.1:$MPORT

echo "server: $OURS_SERVER (pid $SERVER_PID), $(nproc) cores"
"${PY[@]}" hold "$PORT" "$CONNS" >"$WORK/hold.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 1200); do
  grep -q '^ready' "$WORK/hold.out" 2>/dev/null && break
  if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then cat "$WORK/hold.out" >&2; exit 1; fi
  sleep 0.1
done
grep -q '^ready' "$WORK/hold.out" || { echo "connections not open after 120 s" >&2; exit 1; }
open=$(curl -s "$URL/varz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])')
echo "open client connections (/varz): $open; opened in $(awk '{print $2}' "$WORK/hold.out") s"
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")

echo
echo "sequential requests, $SCRAPES each (ms):"
for path in /metrics /varz /connz; do
  printf '  %-9s %s\n' "$path" "$("${PY[@]}" scrape "$URL$path" "$SCRAPES")"
done
cpu0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
"${PY[@]}" scrape "$URL/metrics" "$SCRAPES" >/dev/null
cpu1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
tick=$(getconf CLK_TCK)
echo "  server CPU per /metrics scrape: $(awk -v a="$cpu0" -v b="$cpu1" -v n="$SCRAPES" -v t="$tick" \
  'BEGIN {printf "%.1f ms", (b - a) * 1000 / t / n}') (utime+stime over $SCRAPES scrapes)"
echo "  server RSS with the connections open: $((rss_kb / 1024)) MiB"

echo
echo "message round trip through the server, 1,000 msgs/s for $PROBE_SECS s (ms):"
printf '  %-24s %s\n' "no scrapes:" "$("${PY[@]}" latency "$PORT" "$PROBE_SECS")"
"${PY[@]}" scrape-loop "$URL/metrics" "$PROBE_SECS" >"$WORK/loop.out" &
LOOP=$!
PIDS+=("$LOOP")
lat=$("${PY[@]}" latency "$PORT" "$PROBE_SECS")
wait "$LOOP" || true
printf '  %-24s %s (%s back to back)\n' "scraping /metrics:" "$lat" "$(cat "$WORK/loop.out")"

kill -0 "$SERVER_PID" || { echo "server died; log:" >&2; cat "$WORK/server.log" >&2; exit 1; }
if grep -q panicked "$WORK/server.log"; then
  echo "server log has a panic:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
