#!/usr/bin/env python3
"""Helpers for bench/compare.sh (standard library only).

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
  report RESULTS_TSV [MD_FILE]     print the comparison table (and write it as markdown)
"""

import os
import re
import selectors
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
        "conns": f"{n('CONNS', 10000)} idle connections (CONNECT+PING/PONG)",
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
}


def fmt(v, metric):
    if v is None:
        return "FAILED"
    if metric in ("pub_rate", "sub_rate", "req_rate"):
        return f"{v:,.0f}"
    if metric == "drop":
        return f"{v:+.1f}"
    if metric == "open_s":
        return f"{v:,.2f}"
    if metric.startswith("load_"):
        return f"{v / 1000:,.1f}"
    return f"{v:,.1f}"


def report(path, md_path):
    # rows: scenario, metric, impl, round, value ("FAIL" when the run failed)
    data = {}
    order = []
    rounds = set()
    with open(path) as f:
        for line in f:
            scen, metric, impl, rnd, value = line.rstrip("\n").split("\t")
            rounds.add(rnd)
            key = (scen, metric)
            if key not in data:
                data[key] = {"ref": [], "ours": [], "ref_fail": 0, "ours_fail": 0}
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

    LABELS = labels()
    rows = []
    for key in order:
        scen, metric = key
        ref, ours = med(key, "ref"), med(key, "ours")
        label, better = METRICS[metric]
        d = data[key]
        note = []
        for impl in ("ref", "ours"):
            if d[impl + "_fail"]:
                total = d[impl + "_fail"] + len(d[impl])
                note.append(f"{'reference' if impl == 'ref' else 'ours'} failed {d[impl + '_fail']}/{total}")
        ratio = "—"
        if ref and ours is not None and ref > 0:
            ratio = f"{ours / ref:.2f}"
        rows.append([LABELS.get(scen, scen), label, fmt(ref, metric), fmt(ours, metric), ratio,
                     better, "; ".join(note)])
        if scen == "subs100k" and metric == "sub_rate":
            # Throughput drop against the plain 1 -> 1 run of the same rounds.
            base = ("ps11", "sub_rate")
            drops = []
            for impl in ("ref", "ours"):
                b, w = med(base, impl), med(key, impl)
                drops.append(None if not b or w is None else (1 - w / b) * 100)
            rows.append([LABELS[scen], METRICS["drop"][0],
                         *("n/a" if d is None else fmt(d, "drop") for d in drops),
                         "—", "lower", ""])

    head = ["scenario", "metric", "reference 2.9.10", "ours", "ours/ref", "better", "notes"]
    if not any(r[6] for r in rows):
        head = head[:-1]
        rows = [r[:-1] for r in rows]
    n = len(rounds)
    title = f"Medians of {n} interleaved round{'s' if n != 1 else ''} (same machine, same `nats bench` client)."

    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    last = None
    for r in rows:
        cells = list(r)
        if cells[0] == last:
            cells[0] = ""
        else:
            last = cells[0]
        print("  ".join(str(c).ljust(w) if i < 2 or i >= 5 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))))

    if md_path:
        with open(md_path, "w") as f:
            f.write(title + "\n\n")
            f.write("| " + " | ".join(head) + " |\n")
            f.write("|" + "|".join("---" if i < 2 or i >= 5 else "---:" for i in range(len(head))) + "|\n")
            for r in rows:
                f.write("| " + " | ".join(str(c) for c in r) + " |\n")


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
    elif cmd == "report":
        report(args[0], args[1] if len(args) > 1 else "")
    else:
        die(f"unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main()
