#!/usr/bin/env python3
"""Does any answer's timing tell whether an account exists? (docs/security.md, enumeration)

Usage: scripts/enumeration_timing.py [--samples N] [--only embedded|postgres] [--cost C]
       (or `just enumeration-timing`)

For each pair of requests an attacker can compare, the script sends both kinds in turns
(interleaved, so drift in the machine's load affects both alike), each time about an account
no earlier sample touched (per-address mail throttling would otherwise make later samples
cheaper), and prints the median latency of each, their difference, and the difference in
units of the spread (the larger interquartile range of the two): |diff| / spread well below
1 means the two answers cannot be told apart by time at this sample size.

Pairs:
  register    a fresh email            vs an email another account holds
  login       the probe's password by email after registering a fresh email
                                       vs the same after registering a taken one
  login-wrong a wrong password for an address that has an account
                                       vs for one that has none
  forgot      an address with an account vs one without
  resend      an address with an unverified account vs one without (both outside the
              once-a-minute limit on mails of a kind to an address)

It runs the service (target/release/auth-http if built, else target/debug/auth-http; build
one first) on the embedded default and on PostgreSQL + Redis, with BCRYPT_COST 12 unless
--cost says otherwise, through scripts/bench.py's server harness.
"""

import argparse
import statistics
import sys
import time
import urllib.error
import urllib.request
import json
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

PROBE_PASSWORD = "Probe-Lantern-Orchard-4417"


def timed(method, url, body):
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            res.read()
            status = res.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    return (time.perf_counter() - started) * 1000, status


def registration(email, username, password=bench.PASSWORD):
    return {"email": email, "username": username, "password": password, "name": "Timing",
            "surname": "Probe"}


def spread(values):
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def compare(name, a_label, a, b_label, b):
    ma, mb = statistics.median(a), statistics.median(b)
    unit = max(spread(a), spread(b), 1e-9)
    diff = mb - ma
    print(f"| {name} | {a_label}: {ma:.1f} ms | {b_label}: {mb:.1f} ms | {diff:+.2f} ms "
          f"| {abs(diff) / unit:.2f} |")


def run(kind, samples, cost):
    server = bench.Server(kind, {"BCRYPT_COST": str(cost), "HASH_CONCURRENCY": "2"})
    base = server.base
    try:
        # Accounts whose addresses are taken, one per sample (unverified: taken all the same).
        registered = time.monotonic()
        for i in range(samples):
            _, status = timed("POST", f"{base}/auth/register",
                              registration(f"owner{i}@example.com", f"owner{i}"))
            assert status == 201, status
        # Mails of one kind to one address are limited to one a minute, whoever asks: wait
        # until the owners' verification mails are out of that window, so that both sides
        # of the resend pair start from the same limit state.
        time.sleep(max(0.0, 61 - (time.monotonic() - registered)))
        results = {key: ([], []) for key in ("register", "login", "login-wrong", "forgot", "resend")}
        for i in range(samples):
            # Alternate which kind goes first, so neither always runs on a warmer server.
            order = [0, 1] if i % 2 == 0 else [1, 0]
            for side in order:
                email = f"fresh{i}@example.com" if side == 0 else f"owner{i}@example.com"
                ms, status = timed("POST", f"{base}/auth/register",
                                   registration(email, f"probe{side}_{i}", PROBE_PASSWORD))
                assert status == 201, (status, email)
                results["register"][side].append(ms)
            for side in order:
                email = f"fresh{i}@example.com" if side == 0 else f"owner{i}@example.com"
                ms, status = timed("POST", f"{base}/auth/login", {"email": email, "password": PROBE_PASSWORD})
                assert status == 403, (status, email)
                results["login"][side].append(ms)
            for side in order:
                email = f"owner{i}@example.com" if side == 0 else f"nobody{i}@example.com"
                ms, status = timed("POST", f"{base}/auth/login",
                                   {"email": email, "password": "Wrong-Wrong-Wrong-1"})
                assert status == 401, (status, email)
                results["login-wrong"][side].append(ms)
            for side in order:
                email = f"owner{i}@example.com" if side == 0 else f"nobody{i}@example.com"
                ms, status = timed("POST", f"{base}/auth/forgot-password", {"email": email})
                assert status == 202, status
                results["forgot"][side].append(ms)
            for side in order:
                email = f"owner{i}@example.com" if side == 0 else f"nobody{i}@example.com"
                ms, status = timed("POST", f"{base}/auth/resend-verification", {"email": email})
                assert status == 202, status
                results["resend"][side].append(ms)
        print(f"\n{kind}, BCRYPT_COST {cost}, {samples} samples of each:\n")
        print("| request | first kind | second kind | difference of medians | difference / spread |")
        print("|---|---|---|---|---|")
        r = results
        compare("register", "fresh email", r["register"][0], "taken email", r["register"][1])
        compare("login, probe's password", "fresh", r["login"][0], "taken", r["login"][1])
        compare("login, wrong password", "account", r["login-wrong"][0], "no account", r["login-wrong"][1])
        compare("forgot-password", "account", r["forgot"][0], "no account", r["forgot"][1])
        compare("resend-verification", "unverified account", r["resend"][0], "no account", r["resend"][1])
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--only", choices=["embedded", "postgres"])
    args = parser.parse_args()
    if not bench.BINARY.exists():
        bench.BINARY = bench.ROOT / "target" / "debug" / "auth-http"
    if not bench.BINARY.exists():
        raise SystemExit("build the service first: cargo build (or cargo build --release)")
    print(f"binary: {bench.BINARY.relative_to(bench.ROOT)}")
    for kind in ["embedded", "postgres"]:
        if args.only in (None, kind):
            run(kind, args.samples, args.cost)


if __name__ == "__main__":
    main()
