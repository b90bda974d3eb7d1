#!/usr/bin/env python3
"""Soak: a mixed workload for a long time against PostgreSQL + Redis, watching errors,
latency and memory over time.

Usage: scripts/soak.py [--minutes N] [--users N] [--cost N] [--embedded] [--out FILE]   (or `just soak`)

Starts the release build itself (fresh database and key prefix, dropped after; see
scripts/bench.py), then runs --users client threads, each repeating a user's journey until
time is up: register, follow the mailed link (read from the development mailer's log line),
log in, verify its token 20 times, refresh three times (verifying each new token), ask for a
password reset, reset it from the mailed link, log in with the new password, log out. Every
answer is checked against the status the contract promises; anything else is an error.
Every --interval seconds it prints one row: requests, errors, p50/p95/p99 latency of that
interval, and the server's resident memory. At the end: the table, and whether memory and
latency stayed flat (the last fifth of the run against the second fifth: the first fifth is
warm-up).
"""

import argparse
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (Server, Storage, rss_mb, the release build)

PASSWORD = "SecurePass123!"
NEW_PASSWORD = "An0ther-Secure-Pass!"


class Mailbox:
    """Reads the development mailer's lines from the server's log: the newest link token per
    (masked recipient, kind). Each soak user has its own domain, so the masked address
    (`u***@u17.soak.test`) is unique."""

    LINE = re.compile(r'to=(\S+) kind="(\w+)".*token=([A-Za-z0-9_-]+)')

    def __init__(self, path):
        self.path = path
        self.tokens = {}
        self.cond = threading.Condition()
        self.offset = 0
        self.running = True
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self):
        while self.running:
            with open(self.path) as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
            found = False
            for line in chunk.splitlines():
                m = self.LINE.search(line)
                if m:
                    with self.cond:
                        self.tokens[(m.group(1), m.group(2))] = m.group(3)
                    found = True
            if found:
                with self.cond:
                    self.cond.notify_all()
            time.sleep(0.02)

    def take(self, masked, kind, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while (masked, kind) not in self.tokens:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} mail for {masked}")
                self.cond.wait(left)
            return self.tokens.pop((masked, kind))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.errors = []
        self.requests = 0

    def record(self, seconds, error=None):
        with self.lock:
            self.requests += 1
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)

    def drain(self):
        with self.lock:
            out = (self.requests, self.latencies, self.errors)
            self.requests, self.latencies, self.errors = 0, [], []
            return out


def call(base, stats, method, path, body=None, token=None, expect=200):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    started = time.monotonic()
    status, payload = 0, None
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except OSError as e:
        stats.record(time.monotonic() - started, f"{method} {path}: {e}")
        return None
    elapsed = time.monotonic() - started
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if status != expect:
        code = payload.get("code") if isinstance(payload, dict) else None
        stats.record(elapsed, f"{method} {path}: {status} {code} (expected {expect})")
        return None
    stats.record(elapsed)
    return payload if payload is not None else {}


def journey(base, mailbox, stats, n):
    """One user's life; returns early (the error recorded) when a step fails."""
    domain = f"u{n}.soak.test"
    email, username = f"user@{domain}", f"soak{n}"
    masked = f"u***@{domain}"
    if call(base, stats, "POST", "/auth/register", {"email": email, "username": username, "password": PASSWORD,
                                                     "name": "Soak", "surname": "Test"}, expect=201) is None:
        return
    if call(base, stats, "POST", "/auth/verify-email", {"token": mailbox.take(masked, "verify_email")}) is None:
        return
    login = call(base, stats, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    if login is None:
        return
    access, refresh = login["access_token"], login["refresh_token"]
    for _ in range(20):
        call(base, stats, "GET", "/auth/verify-token", token=access)
    for _ in range(3):
        pair = call(base, stats, "POST", "/auth/refresh-token", {"refresh_token": refresh})
        if pair is None:
            return
        access, refresh = pair["access_token"], pair["refresh_token"]
        call(base, stats, "GET", "/auth/verify-token", token=access)
    call(base, stats, "GET", "/users/profile", token=access)
    if call(base, stats, "POST", "/auth/forgot-password", {"email": email}, expect=202) is None:
        return
    token = mailbox.take(masked, "reset_password")
    if call(base, stats, "POST", "/auth/reset-password", {"token": token, "new_password": NEW_PASSWORD}) is None:
        return
    # The reset ended every session: the old token is refused.
    call(base, stats, "GET", "/auth/verify-token", token=access, expect=401)
    login = call(base, stats, "POST", "/auth/login", {"username": username, "password": NEW_PASSWORD})
    if login is None:
        return
    call(base, stats, "POST", "/auth/logout", {}, token=login["access_token"], expect=204)
    call(base, stats, "GET", "/auth/verify-token", token=login["access_token"], expect=401)


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def rss_slope(rows):
    """Least-squares slope of RSS against time, MB per minute (0 with fewer than two rows)."""
    if len(rows) < 2:
        return 0.0
    xs, ys = [r["minute"] for r in rows], [r["rss"] for r in rows]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--users", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--cost", type=int, default=10, help="BCRYPT_COST of the server (default 10)")
    parser.add_argument("--interval", type=int, default=60, help="seconds per row (default 60)")
    parser.add_argument("--embedded", action="store_true", help="SQLite and the in-process cache instead")
    parser.add_argument("--out", help="also write the report (Markdown) here")
    parser.add_argument("--no-build", action="store_true", help="use target/release/auth-http as it is")
    args = parser.parse_args()
    import subprocess
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "auth-http"], cwd=bench.ROOT, check=True)
    kind = "embedded" if args.embedded else "postgres"
    server = bench.Server(kind, {"BCRYPT_COST": str(args.cost)})
    mailbox = Mailbox(Path(server.dir, "log"))
    stats = Stats()
    stop = threading.Event()
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def worker():
        while not stop.is_set():
            with counter_lock:
                n = next(counter)
            try:
                journey(server.base, mailbox, stats, n)
            except (TimeoutError, KeyError, TypeError) as e:
                stats.record(0.0, f"journey {n}: {e!r}")

    rows = []
    print(f"soak: {kind}, BCRYPT_COST {args.cost}, {args.users} users, {args.minutes:g} min; "
          f"server RSS at start {server.idle_rss:.1f} MB", flush=True)
    print("| minute | requests | req/s | errors | p50 ms | p95 ms | p99 ms | RSS MB |", flush=True)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.users)]
    began = time.monotonic()
    all_errors = []
    try:
        for t in threads:
            t.start()
        end = began + args.minutes * 60
        while time.monotonic() < end:
            try:
                time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
            except KeyboardInterrupt:
                print("interrupted: stopping early", flush=True)
                end = 0
            requests, lat, errors = stats.drain()
            all_errors += errors
            row = {"minute": (time.monotonic() - began) / 60, "requests": requests, "rps": requests / args.interval,
                   "errors": len(errors), "p50": pct(lat, 0.50), "p95": pct(lat, 0.95), "p99": pct(lat, 0.99),
                   "rss": bench.rss_mb(server.proc.pid)}
            rows.append(row)
            print(f"| {row['minute']:.1f} | {requests:,} | {row['rps']:,.0f} | {len(errors)} | {row['p50']:.1f} | "
                  f"{row['p95']:.1f} | {row['p99']:.1f} | {row['rss']:.1f} |", flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        mailbox.running = False
        server.stop()
    fifth = max(1, len(rows) // 5)
    early, late = rows[fifth:2 * fifth] or rows[:1], rows[-fifth:]
    mean = lambda key, part: statistics.mean(r[key] for r in part)  # noqa: E731
    summary = [
        f"requests {sum(r['requests'] for r in rows):,}, errors {len(all_errors)}",
        f"RSS: {rows[0]['rss']:.1f} MB after the first interval, {mean('rss', early):.1f} MB early, "
        f"{mean('rss', late):.1f} MB late, peak {max(r['rss'] for r in rows):.1f} MB; "
        f"after warm-up {rss_slope(rows[fifth:]):+.3f} MB a minute (least squares)",
        f"p99: {mean('p99', early):.1f} ms early, {mean('p99', late):.1f} ms late; "
        f"p50: {mean('p50', early):.1f} ms early, {mean('p50', late):.1f} ms late; "
        f"throughput {mean('rps', early):,.0f} req/s early, {mean('rps', late):,.0f} late",
    ]
    distinct = sorted(set(re.sub(r"\d+", "N", e) for e in all_errors))
    print("\n" + "\n".join(summary))
    for e in distinct[:20]:
        print(f"error: {e}")
    if args.out:
        lines = [f"Soak: {kind}, BCRYPT_COST {args.cost}, {args.users} client threads, {args.minutes:g} min "
                 f"(`scripts/soak.py --minutes {args.minutes:g} --users {args.users} --cost {args.cost}`).", "",
                 "| minute | requests | req/s | errors | p50 ms | p95 ms | p99 ms | RSS MB |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['minute']:.1f} | {r['requests']:,} | {r['rps']:,.0f} | {r['errors']} | {r['p50']:.1f} | "
                  f"{r['p95']:.1f} | {r['p99']:.1f} | {r['rss']:.1f} |" for r in rows]
        lines += ["", *[f"- {s}" for s in summary], *[f"- error: {e}" for e in distinct[:20]], ""]
        Path(args.out).write_text("\n".join(lines))
    sys.exit(1 if all_errors else 0)


if __name__ == "__main__":
    main()
