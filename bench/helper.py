#!/usr/bin/env python3
"""Helpers for bench/compare.sh and bench/fault.sh (standard library only).

  freeports N                      N distinct free TCP ports on 127.0.0.1, one per line
  wait-ready PORT [SECS]           wait until a NATS server on PORT answers PING with PONG
  probe PUB_PORT SUB_PORT [SECS]   wait until a message published on one server reaches a
                                   subscriber on another (cluster routes are up)
  conns PORT COUNT PID             open COUNT idle client connections (CONNECT + PING, wait
                                   for every PONG) and print the server's VmRSS before/after
  subs PORT COUNT WILDCARD_PCT     install COUNT subscriptions on one connection, print
                                   "ready <ms>" once the server acknowledged them, then idle
                                   (answering PINGs) until killed
  parse FILE                       turn the output of `nats bench` into shell assignments
  parse-go FILE                    the same for the output of bench/gobench (its GOBENCH_RESULT
                                   line)
  report RESULTS_TSV [MD_FILE] [FAILURES_TSV]
                                   print the comparison table (and write it as markdown); rows
                                   of RESULTS_TSV: scenario, driver, metric, impl, round, value
  stuck PORT                       a raw connection that sends CONNECT + `SUB > 1` and then never
                                   reads; prints "ready" and holds the socket until killed
  stuck-report MON_PORT SERIES GOBENCH_OUT
                                   the stuck-subscriber case of fault.sh: when and why the stuck
                                   connection was closed (/connz?state=closed), the publisher's
                                   rate while it was still there, what the healthy one got
  stream-msgs PORT STREAM          the number of messages a JetStream stream holds ($JS.API.STREAM.INFO)
  soak-report GOBENCH_OUT          RSS samples of a soak run and whether they grew
  side-by-side TSV                 fault.sh's summary: rows "case, metric, impl, value" as a
                                   table with the reference and ours side by side
"""

import datetime
import json
import os
import re
import selectors
import shlex
import signal
import socket
import statistics
import sys
import time

HOST = "127.0.0.1"
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"name":"bench-helper","lang":"python","version":"0"}\r\n'


def die(msg):
    print(f"helper: {msg}", file=sys.stderr)
    sys.exit(1)


def freeports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
    for s in socks:
        s.close()


def read_until(sock, token, deadline, buf=b""):
    """Reads from a blocking socket until `token` appears; returns everything read."""
    while token not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {token!r} from server (got {buf[-200:]!r})")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"server closed the connection (got {buf[-200:]!r})")
        buf += chunk
    return buf


def ping_pong(port, timeout):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(CONNECT + b"PING\r\n")
        read_until(s, b"PONG\r\n", time.monotonic() + timeout)


def wait_ready(port, secs):
    deadline = time.monotonic() + secs
    last = None
    while time.monotonic() < deadline:
        try:
            ping_pong(port, 2)
            return
        except OSError as e:
            last = e
            time.sleep(0.05)
    die(f"server on port {port} not ready after {secs}s: {last}")


def probe(pub_port, sub_port, secs):
    """Subscribes on one server and publishes on the other until the message arrives."""
    deadline = time.monotonic() + secs
    subject = f"_bench_probe.{os.getpid()}"
    sub = socket.create_connection((HOST, sub_port), timeout=5)
    sub.sendall(CONNECT + f"SUB {subject} 1\r\nPING\r\n".encode())
    buf = read_until(sub, b"PONG\r\n", deadline)
    pub = socket.create_connection((HOST, pub_port), timeout=5)
    pub.sendall(CONNECT)
    sub.setblocking(False)
    while time.monotonic() < deadline:
        pub.sendall(f"PUB {subject} 2\r\nhi\r\nPING\r\n".encode())
        time.sleep(0.1)
        try:
            while True:
                chunk = sub.recv(65536)
                if not chunk:
                    die("probe subscriber was disconnected")
                buf += chunk
        except BlockingIOError:
            pass
        if b"MSG " + subject.encode() in buf:
            print(f"route ok after {secs - (deadline - time.monotonic()):.2f}s")
            return
    die(f"no message from port {pub_port} reached a subscriber on port {sub_port} within {secs}s")


def stream_msgs(port, stream, timeout=30):
    """Prints state.messages of a JetStream stream, asking $JS.API.STREAM.INFO.<stream>."""
    deadline = time.monotonic() + timeout
    inbox = f"_INBOX.helper{os.getpid()}"
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(CONNECT + f"SUB {inbox} 1\r\nPUB $JS.API.STREAM.INFO.{stream} {inbox} 0\r\n\r\n".encode())
        buf = read_until(s, b"MSG " + inbox.encode(), deadline)
        head_at = buf.index(b"MSG " + inbox.encode())
        buf = read_until(s, b"\r\n", deadline, buf[head_at:])
        head, rest = buf.split(b"\r\n", 1)
        size = int(head.split()[-1])
        while len(rest) < size:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                die(f"server closed the connection during stream info {stream}")
            rest += chunk
    info = json.loads(rest[:size])
    if "error" in info:
        die(f"stream info {stream}: {info['error'].get('description', info['error'])}")
    print(info["state"]["messages"])


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    die(f"no VmRSS for pid {pid}")


def conns(port, count, pid):
    time.sleep(0.5)
    before = vm_rss_kb(pid)
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}
    t0 = time.monotonic()
    # Connect in batches, then wait for every PONG; keep all of them open while measuring.
    batch = 500
    for start in range(0, count, batch):
        for _ in range(min(batch, count - start)):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(CONNECT + b"PING\r\n")
            s.setblocking(False)
            socks.append(s)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        drain(sel, pending, wait_all=False)
    deadline = time.monotonic() + 60
    while pending:
        if time.monotonic() > deadline:
            die(f"{len(pending)} of {count} connections got no PONG within 60s")
        drain(sel, pending, wait_all=True)
    elapsed = time.monotonic() - t0
    time.sleep(1.0)
    after = vm_rss_kb(pid)
    print(f"rss_before_kb={before} rss_after_kb={after} open_secs={elapsed:.2f}")
    for s in socks:
        s.close()


def drain(sel, pending, wait_all):
    for key, _ in sel.select(timeout=1.0 if wait_all else 0):
        s = key.fileobj
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            die("server closed an idle connection")
        if s in pending:
            pending[s] += chunk
            if b"PONG\r\n" in pending[s]:
                del pending[s]
                sel.unregister(s)
            elif b"-ERR" in pending[s]:
                die(f"server error: {pending[s][-200:]!r}")


def sub_subjects(count, wildcard_pct):
    """Mostly literal a.<i>.b.<j>; every n-th one a wildcard in one of four shapes."""
    every = max(1, round(100 / wildcard_pct)) if wildcard_pct > 0 else 0
    for k in range(count):
        i, j = divmod(k, 100)
        if every and k % every == 0:
            shape = (k // every) % 4
            yield (f"a.{i}.*.{j}", f"a.*.b.{j}.{i}", f"a.{i}.b.>", f"*.{i}.b.{j}")[shape]
        else:
            yield f"a.{i}.b.{j}"


def subs(port, count, wildcard_pct):
    s = socket.create_connection((HOST, port), timeout=30)
    t0 = time.monotonic()
    out = bytearray(CONNECT)
    for sid, subject in enumerate(sub_subjects(count, wildcard_pct), 1):
        out += f"SUB {subject} {sid}\r\n".encode()
        if len(out) > 1 << 16:
            s.sendall(out)
            out.clear()
    out += b"PING\r\n"
    s.sendall(out)
    buf = read_until(s, b"PONG\r\n", time.monotonic() + 60)
    if b"-ERR" in buf:
        die(f"server refused subscriptions: {buf[-300:]!r}")
    print(f"ready {(time.monotonic() - t0) * 1000:.0f}", flush=True)
    s.settimeout(None)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            die("server closed the subscription holder's connection")
        if b"PING\r\n" in chunk:
            s.sendall(b"PONG\r\n")


DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)")
UNIT_US = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def duration_us(text):
    total = 0.0
    for num, unit in DUR.findall(text):
        total += float(num) * UNIT_US[unit]
    return total


def rate(line):
    m = re.search(r"stats: ([\d,]+) msgs/sec", line)
    return int(m.group(1).replace(",", "")) if m else None


def parse(path):
    vals = {"PUB_RATE": "", "SUB_RATE": "", "LAT_P50": "", "LAT_P99": "", "LOST": ""}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if s.startswith("Pub stats:"):
                vals["PUB_RATE"] = rate(s)
            elif s.startswith("Sub stats:"):
                vals["SUB_RATE"] = rate(s)
            elif "latency: p50" in s or "Latency publish to receive: p50" in s:
                parts = dict(p.strip().split(" ", 1) for p in s.split(":", 1)[1].split("|"))
                vals["LAT_P50"] = f"{duration_us(parts['p50']):.1f}"
                vals["LAT_P99"] = f"{duration_us(parts['p99']):.1f}"
            elif "received only" in s:
                vals["LOST"] = s.split(" ", 1)[1] if re.match(r"\d\d:\d\d:\d\d ", s) else s
    for k, v in vals.items():
        v = "" if v is None else str(v)
        print(f"{k}='{v}'")


def gobench_result(path):
    """The key=value pairs of the last GOBENCH_RESULT line of a bench/gobench output."""
    res = {}
    failed = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("GOBENCH_RESULT "):
                try:
                    words = shlex.split(line)  # error="..." is quoted (Go %q)
                except ValueError:
                    words = line.split()
                res = dict(kv.split("=", 1) for kv in words[1:] if "=" in kv)
            elif line.startswith("!!!!!!!! FAILED: "):
                failed.append(line.split(": ", 1)[1].strip())
    return res, failed


def parse_go(path):
    res, failed = gobench_result(path)
    vals = {"PUB_RATE": "", "SUB_RATE": "", "LAT_P50": "", "LAT_P99": "", "LOST": ""}
    if not res:
        vals["LOST"] = "no GOBENCH_RESULT line (driver crashed or timed out)"
    else:
        if res.get("pub_rate", "0") not in ("", "0"):
            vals["PUB_RATE"] = res["pub_rate"]
        if res.get("sub_rate", "0") not in ("", "0"):
            vals["SUB_RATE"] = res["sub_rate"]
        vals["LAT_P50"] = res.get("lat_p50_us", "")
        vals["LAT_P99"] = res.get("lat_p99_us", "")
        if res.get("status") != "ok":
            why = "; ".join(failed) or res.get("error", "").strip('"') or "FAILED"
            vals["LOST"] = f"{why} (sub counts {res.get('sub_counts', '?')} of {res.get('expected', '?')})"
    for k, v in vals.items():
        v = str(v).replace("'", "")
        print(f"{k}='{v}'")


def stuck(port):
    """Subscribes to everything and never reads: the server's writes to it must back up."""
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(CONNECT.replace(b'"bench-helper"', b'"stuck-subscriber"') + b"SUB > 1\r\n")
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def rfc3339_ns(text):
    """Go's RFC 3339 timestamps (up to 9 fractional digits, Z or ±hh:mm) -> unix ns."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    secs = datetime.datetime.fromisoformat(m.group(1) + tz).timestamp()
    frac = (m.group(2) or "0")[:9].ljust(9, "0")
    return int(round(secs)) * 1_000_000_000 + int(frac)


def http_json(port, path):
    import urllib.request
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as r:
        return json.load(r)


def series(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                rows.append([int(x) for x in parts])
    return rows


def published_at(rows, t_ns):
    """Published count at time t_ns, interpolated between the series' samples."""
    prev = rows[0]
    for r in rows:
        if r[0] >= t_ns:
            if r[0] == prev[0]:
                return r[1]
            return prev[1] + (r[1] - prev[1]) * (t_ns - prev[0]) / (r[0] - prev[0])
        prev = r
    return rows[-1][1]


def stuck_report(mon_port, series_path, out_path):
    res, failed = gobench_result(out_path)
    rows = series(series_path)
    closed = http_json(mon_port, "/connz?state=closed&limit=1000").get("connections") or []
    still = http_json(mon_port, "/connz?limit=1000").get("connections") or []
    start = int(res.get("pub_start_ns", rows[0][0]))
    end = int(res.get("pub_end_ns", rows[-1][0]))
    published = int(res.get("published", rows[-1][1]))
    counts = res.get("sub_counts", "")
    out = {"published": published, "healthy_received": counts, "healthy_lost": int(res.get("lost", 0) or 0),
           "status": res.get("status", "?")}
    stuck_conn = [c for c in closed if c.get("name") == "stuck-subscriber"]
    if stuck_conn:
        c = stuck_conn[-1]
        cut = rfc3339_ns(c["stop"])
        out["stuck_cut_after_s"] = round((cut - start) / 1e9, 2)
        out["stuck_reason"] = c.get("reason", "")
        before = published_at(rows, min(cut, end)) / max(1e-9, (min(cut, end) - start) / 1e9)
        out["pub_rate_while_stuck"] = int(before)
        if end > cut:
            after = (published - published_at(rows, cut)) / ((end - cut) / 1e9)
            out["pub_rate_after_cut"] = int(after)
    else:
        alive = any(c.get("name") == "stuck-subscriber" for c in still)
        out["stuck_cut_after_s"] = None
        out["stuck_reason"] = "still connected at the end" if alive else "not found in /connz"
        out["pub_rate_while_stuck"] = int(published / max(1e-9, (end - start) / 1e9))
    others = [c for c in closed if c.get("name") != "stuck-subscriber"
              and not str(c.get("reason", "")).startswith("Client Closed")]
    groups = {}
    for c in others:
        key = (c.get("name") or f"cid {c.get('cid', '?')}", c.get("reason", "?"))
        groups.setdefault(key, []).append((rfc3339_ns(c["stop"]) - start) / 1e9)
    out["other_closed"] = [f"{name}: {reason} x{len(ts)} (at {', '.join(f'{t:.1f}' for t in sorted(ts))} s)"
                           for (name, reason), ts in groups.items()]
    peaks = [kv.split(":")[1] for kv in res.get("rss_peak_kb", "").split(",") if ":" in kv]
    out["peak_rss_mib"] = round(int(peaks[0]) / 1024, 1) if peaks and int(peaks[0]) > 0 else None
    sampled = []
    with open(out_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"RSS t=[\d.]+s pid=\d+ rss_kb=(\d+)", line)
            if m:
                sampled.append(int(m.group(1)))
    out["max_sampled_rss_mib"] = round(max(sampled) / 1024, 1) if sampled else None
    out["failures"] = failed
    shell_assign(out)


def shell_assign(values):
    """Prints shell assignments (lists joined with '; ', None as empty)."""
    for k, v in values.items():
        if v is None:
            v = ""
        elif isinstance(v, list):
            v = "; ".join(str(x) for x in v) or "none"
        print(f"{k}={shlex.quote(str(v))}")


def soak_report(out_path):
    samples = []
    with open(out_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"RSS t=([\d.]+)s pid=(\d+) rss_kb=(-?\d+) published=(\d+)", line)
            if m:
                samples.append((float(m.group(1)), int(m.group(3)), int(m.group(4))))
    res, failed = gobench_result(out_path)
    out = {"samples": len(samples), "status": res.get("status", "?"),
           "published": res.get("published", "?"), "received": res.get("sub_counts", "?")}
    if not samples:
        out.update(rss_mib="", first_third_mib="", last_third_mib="", peak_mib="", growth_mib="",
                   verdict="no RSS samples")
        shell_assign(out)
        return
    out["rss_mib"] = " ".join(f"{kb / 1024:.1f}" for _, kb, _ in samples)
    # Growth: the median of the last third against the median of the first third, leaving out
    # the first sample (taken before any load).
    body = [kb for _, kb, _ in samples[1:]] or [samples[0][1]]
    third = max(1, len(body) // 3)
    first, last = statistics.median(body[:third]), statistics.median(body[-third:])
    growth = (last - first) / 1024
    pct = 100 * (last - first) / first if first else 0.0
    out["first_third_mib"] = f"{first / 1024:.1f}"
    out["last_third_mib"] = f"{last / 1024:.1f}"
    out["peak_mib"] = f"{max(kb for _, kb, _ in samples) / 1024:.1f}"
    out["growth_mib"] = f"{growth:.1f}"
    flat = growth <= 5 or pct <= 10
    out["verdict"] = "flat" if flat else f"GROWING: +{growth:.1f} MiB (+{pct:.0f}%)"
    shell_assign(out)


def side_by_side(path):
    cells, order = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            case, metric, impl, value = line.rstrip("\n").split("\t", 3)
            if (case, metric) not in cells:
                cells[(case, metric)] = {}
                order.append((case, metric))
            cells[(case, metric)][impl] = value
    head = ["case", "metric", "reference 2.9.10", "ours"]
    rows = [[c, m, cells[(c, m)].get("ref", "—"), cells[(c, m)].get("ours", "—")] for c, m in order]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    last = None
    for r in rows:
        cells_ = list(r)
        if cells_[0] == last:
            cells_[0] = ""
        else:
            last = cells_[0]
        print("  ".join(str(c).ljust(w) for c, w in zip(cells_, widths)).rstrip())


def labels():
    """Scenario labels with the sizes compare.sh used (it exports them)."""
    def n(var, default):
        return f"{int(os.environ.get(var, default)):,}"

    subs = int(os.environ.get("SUBS", 100000))
    subs_txt = f"{subs // 1000}k" if subs % 1000 == 0 else f"{subs:,}"
    return {
        "pub16": f"publish only, 16 B, {n('PUB_MSGS', 1000000)} msgs",
        "pub128": f"publish only, 128 B, {n('PUB_MSGS', 1000000)} msgs",
        "ps11": f"1 pub → 1 sub, 128 B, {n('PS_MSGS', 500000)} msgs",
        "fan5": f"1 pub → 5 subs, 128 B, {n('FAN_MSGS', 200000)} msgs",
        "ps44": f"4 pubs → 4 subs, 128 B, {n('MANY_MSGS', 200000)} msgs",
        "queue3": f"1 pub → queue group of 3, 128 B, {n('PS_MSGS', 500000)} msgs",
        "reqrep": f"request/reply, 1 ↔ 1, 128 B, {n('REQ_MSGS', 20000)} requests",
        "cluster": f"3-node cluster, pub node 1 → sub node 2, {n('CLUSTER_MSGS', 300000)} msgs",
        "gateway": f"2 clusters over a gateway, pub in A → sub in B, {n('GATEWAY_MSGS', 300000)} msgs",
        "leaf": f"hub → leaf node, pub on the hub → sub on the leaf, {n('LEAF_MSGS', 300000)} msgs",
        "conns": f"{n('CONNS', 10000)} idle connections (CONNECT+PING/PONG)",
        "ws11": f"1 pub → 1 sub over websocket, 128 B, {n('WS_MSGS', 500000)} msgs",
        "jspub-sync-file": f"JetStream publish, each waits for its PubAck, file, 128 B, {n('JS_SYNC_MSGS', 20000)} msgs",
        "jspub-async-file": f"JetStream async publish, 100 PubAcks in flight, file, 128 B, {n('JS_PUB_MSGS', 1000000)} msgs",
        "jspub-async-memory": f"JetStream async publish, 100 PubAcks in flight, memory, 128 B, {n('JS_PUB_MSGS', 1000000)} msgs",
        "jsconsume-file": f"JetStream durable pull consumer, fetch 100 + ack each, file, {n('JS_CONSUME_MSGS', 1000000)} stored msgs",
        "jsconsume-memory": f"JetStream durable pull consumer, fetch 100 + ack each, memory, {n('JS_CONSUME_MSGS', 1000000)} stored msgs",
        "subs100k": f"1 → 1 as above, with {subs_txt} subscriptions "
                    f"({os.environ.get('WILDCARD_PCT', '10')}% wildcards) on an idle client",
    }


METRICS = {
    "pub_rate": ("msgs/s published", "higher"),
    "sub_rate": ("msgs/s received (all subs)", "higher"),
    "req_rate": ("requests/s", "higher"),
    "lat_p50": ("round-trip latency p50 (µs)", "lower"),
    "lat_p99": ("round-trip latency p99 (µs)", "lower"),
    "load_p50": ("pub → sub latency p50 at full load (ms)", "lower"),
    "load_p99": ("pub → sub latency p99 at full load (ms)", "lower"),
    "rss_idle": ("RSS before (MiB)", "lower"),
    "rss_conns": ("RSS with all connections open (MiB)", "lower"),
    "open_s": ("time to open them all (s)", "lower"),
    "per_conn": ("RSS per connection (KiB)", "lower"),
    "install_ms": ("install time (ms)", "lower"),
    "drop": ("drop vs 1 → 1 without them (%)", "lower"),
    "cpu": ("server CPU s per million messages", "lower"),
}


def fmt(v, metric):
    if v is None:
        return "FAILED"
    if metric in ("pub_rate", "sub_rate", "req_rate"):
        return f"{v:,.0f}"
    if metric == "drop":
        return f"{v:+.1f}"
    if metric in ("open_s", "cpu"):
        return f"{v:,.2f}"
    if metric.startswith("load_"):
        return f"{v / 1000:,.1f}"
    return f"{v:,.1f}"


def report(path, md_path, failures_path=""):
    # rows: scenario, driver, metric, impl, round, value ("FAIL" when the run failed); the
    # metric "cpu" (server CPU s per million messages) goes next to the first metric of its
    # scenario and driver.
    data = {}
    order = []
    rounds = set()
    with open(path) as f:
        for line in f:
            scen, drv, metric, impl, rnd, value = line.rstrip("\n").split("\t")
            rounds.add(rnd)
            key = (scen, drv, metric)
            if key not in data:
                data[key] = {"ref": [], "ours": [], "ref_fail": 0, "ours_fail": 0}
                if metric != "cpu":
                    order.append(key)
            if value == "FAIL":
                data[key][impl + "_fail"] += 1
            else:
                data[key][impl].append(float(value))

    def med(key, impl):
        d = data.get(key)
        if not d or not d[impl]:
            return None
        return statistics.median(d[impl])

    def ratio(ref, ours):
        return f"{ours / ref:.2f}" if ref and ours is not None and ref > 0 else "—"

    LABELS = labels()
    rows = []
    cpu_done = set()
    for key in order:
        scen, drv, metric = key
        ref, ours = med(key, "ref"), med(key, "ours")
        label, better = METRICS[metric]
        d = data[key]
        note = []
        for impl in ("ref", "ours"):
            if d[impl + "_fail"]:
                total = d[impl + "_fail"] + len(d[impl])
                note.append(f"{'reference' if impl == 'ref' else 'ours'} FAILED {d[impl + '_fail']}/{total}")
        cpu_cells = ["", "", ""]
        ckey = (scen, drv, "cpu")
        if ckey in data and (scen, drv) not in cpu_done:
            cpu_done.add((scen, drv))
            cr, co = med(ckey, "ref"), med(ckey, "ours")
            cpu_cells = [fmt(cr, "cpu"), fmt(co, "cpu"), ratio(cr, co)]
        rows.append([LABELS.get(scen, scen), drv, label, fmt(ref, metric), fmt(ours, metric),
                     ratio(ref, ours), better, *cpu_cells, "; ".join(note)])
        if scen == "subs100k" and metric == "sub_rate":
            # Throughput drop against the plain 1 -> 1 run of the same rounds and driver.
            base = ("ps11", drv, "sub_rate")
            drops = []
            for impl in ("ref", "ours"):
                b, w = med(base, impl), med(key, impl)
                drops.append(None if not b or w is None else (1 - w / b) * 100)
            rows.append([LABELS[scen], drv, METRICS["drop"][0],
                         *("n/a" if x is None else fmt(x, "drop") for x in drops),
                         "—", "lower", "", "", "", ""])

    head = ["scenario", "driver", "metric", "reference 2.9.10", "ours", "ours/ref", "better",
            "ref CPU s/M msgs", "ours CPU s/M msgs", "CPU ours/ref", "notes"]
    if not any(r[10] for r in rows):
        head = head[:-1]
        rows = [r[:-1] for r in rows]
    numeric = {3, 4, 5, 7, 8, 9}
    n = len(rounds)
    drivers = os.environ.get("DRIVER_NOTE", "nats = our `nats bench`; go = bench/gobench (nats.go)")
    title = (f"Medians of {n} interleaved round{'s' if n != 1 else ''} (same machine; drivers: {drivers}). "
             "CPU: the server's utime+stime per million messages published (requests for "
             "request/reply; the 3 nodes summed for the cluster, hub and leaf for the leaf node).")

    fails = []
    if failures_path and os.path.exists(failures_path):
        with open(failures_path) as f:
            fails = [line.rstrip("\n").split("\t", 4) for line in f if line.strip()]

    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))] if rows else []
    print(title)
    if rows:
        print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        print("  ".join("-" * w for w in widths))
    last = None
    for r in rows:
        cells = list(r)
        if cells[0] == last:
            cells[0] = ""
        else:
            last = cells[0]
        print("  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    if fails:
        print()
        print(f"!!!!!!!! {len(fails)} FAILED run{'s' if len(fails) != 1 else ''} "
              "(messages lost, or the run did not complete):")
        for scen, drv, impl, rnd, what in fails:
            print(f"!!   {scen}, driver {drv}, {'reference' if impl == 'ref' else 'ours'}, round {rnd}: {what}")

    if md_path:
        with open(md_path, "w") as f:
            f.write(title + "\n\n")
            f.write("| " + " | ".join(head) + " |\n")
            f.write("|" + "|".join("---:" if i in numeric else "---" for i in range(len(head))) + "|\n")
            for r in rows:
                f.write("| " + " | ".join(str(c) for c in r) + " |\n")
            if fails:
                f.write(f"\n**FAILED runs ({len(fails)}):**\n\n")
                for scen, drv, impl, rnd, what in fails:
                    f.write(f"- {scen}, driver {drv}, {'reference' if impl == 'ref' else 'ours'}, "
                            f"round {rnd}: {what}\n")


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeports":
        freeports(int(args[0]))
    elif cmd == "wait-ready":
        wait_ready(int(args[0]), float(args[1]) if len(args) > 1 else 10)
    elif cmd == "probe":
        probe(int(args[0]), int(args[1]), float(args[2]) if len(args) > 2 else 10)
    elif cmd == "conns":
        conns(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "subs":
        subs(int(args[0]), int(args[1]), float(args[2]))
    elif cmd == "parse":
        parse(args[0])
    elif cmd == "parse-go":
        parse_go(args[0])
    elif cmd == "report":
        report(args[0], args[1] if len(args) > 1 else "", args[2] if len(args) > 2 else "")
    elif cmd == "stuck":
        stuck(int(args[0]))
    elif cmd == "stuck-report":
        stuck_report(int(args[0]), args[1], args[2])
    elif cmd == "stream-msgs":
        stream_msgs(int(args[0]), args[1])
    elif cmd == "soak-report":
        soak_report(args[0])
    elif cmd == "side-by-side":
        side_by_side(args[0])
    else:
        die(f"unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main()
