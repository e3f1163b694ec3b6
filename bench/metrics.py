#!/usr/bin/env python3
"""Helpers for bench/metrics.sh (standard library only).

  hold PORT COUNT            open COUNT idle client connections (CONNECT + PING, wait for every
                             PONG), print "ready <secs>", then answer the server's PINGs until
                             killed
  scrape URL N               GET URL N times one after another; print the times (ms: min,
                             median, p90, max), the body size and, for Prometheus text, the
                             number of samples
  scrape-loop URL SECS       GET URL back to back for SECS seconds; print how many answered
  latency PORT SECS          one connection subscribed to a subject publishes to it 1,000 times
                             a second for SECS seconds and times each message's round trip
                             through the server; print the count, p50, p99, max (ms) and how
                             many took longer than 50 ms
"""

import selectors
import socket
import statistics
import sys
import time
import urllib.request

HOST = "127.0.0.1"
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"name":"metrics-bench","lang":"python","version":"0"}\r\n'


def die(msg):
    print(f"metrics.py: {msg}", file=sys.stderr)
    sys.exit(1)


def hold(port, count):
    sel = selectors.DefaultSelector()
    pending = {}
    t0 = time.monotonic()
    for start in range(0, count, 500):
        for _ in range(min(500, count - start)):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(CONNECT + b"PING\r\n")
            s.setblocking(False)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        serve(sel, pending, 0)
    deadline = time.monotonic() + 120
    while any(b"PONG\r\n" not in v for v in pending.values()):
        if time.monotonic() > deadline:
            die("not every connection got its PONG within 120 s")
        serve(sel, pending, 1.0)
    print(f"ready {time.monotonic() - t0:.2f}", flush=True)
    for s in pending:
        pending[s] = b"PONG\r\n"
    while True:
        serve(sel, pending, None)


def serve(sel, pending, timeout):
    """Reads what arrived; keeps PONG markers; answers PINGs."""
    for key, _ in sel.select(timeout=timeout):
        s = key.fileobj
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            die("the server closed an idle connection")
        if b"-ERR" in chunk:
            die(f"server error: {chunk[-200:]!r}")
        if b"PONG\r\n" in chunk:
            pending[s] = b"PONG\r\n"
        if b"PING\r\n" in chunk:
            s.sendall(b"PONG\r\n")


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, int(round(p / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def scrape(url, n):
    times = []
    body = b""
    for _ in range(n):
        t0 = time.perf_counter()
        body = get(url)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    line = (
        f"min={times[0]:.1f} median={statistics.median(times):.1f} p90={pct(times, 90):.1f} "
        f"max={times[-1]:.1f} bytes={len(body)}"
    )
    if body.startswith(b"#"):
        samples = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
        line += f" samples={samples}"
    print(line)


def scrape_loop(url, secs):
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        get(url)
        n += 1
    print(f"scrapes={n}")


def latency(port, secs):
    s = socket.create_connection((HOST, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(CONNECT + b"SUB lat.probe 1\r\nPING\r\n")
    buf = b""
    while b"PONG\r\n" not in buf:
        buf += s.recv(65536)
    buf = b""
    rtts = []
    end = time.monotonic() + secs
    next_at = time.monotonic()
    while time.monotonic() < end:
        t0 = time.perf_counter()
        s.sendall(b"PUB lat.probe 8\r\n12345678\r\n")
        while b"12345678\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                die("the server closed the probe connection")
            buf += chunk
        buf = buf.split(b"12345678\r\n", 1)[1]
        rtts.append((time.perf_counter() - t0) * 1000)
        next_at += 0.001
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()
    rtts.sort()
    slow = sum(1 for r in rtts if r > 50)
    print(
        f"count={len(rtts)} p50={pct(rtts, 50):.3f} p99={pct(rtts, 99):.3f} "
        f"max={rtts[-1]:.3f} over_50ms={slow}"
    )


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hold":
        hold(int(args[0]), int(args[1]))
    elif cmd == "scrape":
        scrape(args[0], int(args[1]))
    elif cmd == "scrape-loop":
        scrape_loop(args[0], float(args[1]))
    elif cmd == "latency":
        latency(int(args[0]), float(args[1]))
    else:
        die(f"unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main()
