#!/usr/bin/env python3
"""Benchmarks of the auth service (issue 7), driven with wrk against a release build.

Usage: scripts/bench.py [--seconds N] [--out docs/benchmarks.md]   (or `just bench`)

Each figure is a ratio against a baseline measured in the same run, on the same machine:
verify-token against the same server's /health/live (the framework floor). Every server is
started by this script on a free port with a fresh data directory, and stopped after.

Status: first part of issue 7. Measured so far: start to ready, resident memory idle and
under load, and verify-token throughput and latency for HS256, RS256, ES256 and EdDSA on the
embedded default. Not yet: refresh, login versus the bcrypt bound, verify-token during a
login flood, PostgreSQL + Redis, the chart (see docs/benchmarks.md, "Not measured yet").
"""

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "auth-http"
PASSWORD = "SecurePass123!"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"null")


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Server:
    """One service process on a fresh data directory."""

    def __init__(self, env):
        self.dir = tempfile.mkdtemp(prefix="auth-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {
            "PATH": os.environ.get("PATH", ""),
            "AUTH_DATA_DIR": f"{self.dir}/data",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_FORMAT": "text",
            "RUST_LOG": "warn,auth_mail=info",
            # Limits off the path: this measures the service, not the limiter's refusals.
            "RATE_LIMIT_IP": "100000000",
            "RATE_LIMIT_IDENTIFIER": "100000000",
            "LOCKOUT_THRESHOLD": "100000000",
        }
        full.update(env)
        self.log = open(f"{self.dir}/log", "w+")
        started = time.monotonic()
        self.proc = subprocess.Popen([str(BINARY), "serve"], env=full, stdout=subprocess.DEVNULL, stderr=self.log)
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/health/live", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - started > 30:
                    raise SystemExit(f"server did not start: {Path(self.dir, 'log').read_text()}")
                time.sleep(0.005)
        self.ready_ms = (time.monotonic() - started) * 1000

    def mailed_token(self):
        for _ in range(100):
            text = Path(self.dir, "log").read_text()
            found = re.findall(r"token=([A-Za-z0-9_-]+)", text)
            if found:
                return found[-1]
            time.sleep(0.05)
        raise SystemExit("no mailed token in the log")

    def signed_in(self):
        http("POST", f"{self.base}/auth/register", {"email": "bench@example.com", "username": "bench",
             "password": PASSWORD, "name": "Bench", "surname": "Mark"})
        http("POST", f"{self.base}/auth/verify-email", {"token": self.mailed_token()})
        return http("POST", f"{self.base}/auth/login", {"username": "bench", "password": PASSWORD})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk(url, seconds, connections=32, headers=(), script=None, sample_pid=None):
    """Runs wrk; returns requests/s, p50 and p99 in ms, errors, and the peak RSS sampled."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    peak = [0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(sample_pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample) if sample_pid else None
    if sampler:
        sampler.start()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    done.set()
    if sampler:
        sampler.join()

    def ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "errors": errors, "peak_rss": peak[0]}


def generate_key(alg):
    out = subprocess.run([str(BINARY), "keys", "generate", "--alg", alg], capture_output=True, text=True, check=True)
    pem = out.stdout
    private = pem[: pem.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")] + "\n"
    return private


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--out", default=None, help="write the results as Markdown here")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "auth-http"], cwd=ROOT, check=True)

    rows = []
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
    print(f"machine: {machine}; release build; wrk -t2 on the same machine; {args.seconds} s per run", flush=True)

    for alg in ["HS256", "RS256", "ES256", "EdDSA"]:
        env = {"BCRYPT_COST": "4"}
        if alg != "HS256":
            env["JWT_PRIVATE_KEY"] = generate_key(alg.lower())
            env["JWT_ALGORITHM"] = alg
        server = Server(env)
        try:
            idle = rss_mb(server.proc.pid)
            access = server.signed_in()["access_token"]
            floor = wrk(f"{server.base}/health/live", args.seconds, sample_pid=server.proc.pid)
            verify = wrk(f"{server.base}/auth/verify-token", args.seconds,
                         headers=[f"Authorization: Bearer {access}"], sample_pid=server.proc.pid)
        finally:
            server.stop()
        row = {"alg": alg, "ready_ms": server.ready_ms, "idle_rss": idle, "floor": floor, "verify": verify,
               "ratio": verify["rps"] / floor["rps"],
               "load_rss": max(floor["peak_rss"], verify["peak_rss"])}
        rows.append(row)
        print(f"{alg:6} floor {floor['rps']:9.0f} req/s | verify-token {verify['rps']:9.0f} req/s "
              f"p50 {verify['p50']:.2f} ms p99 {verify['p99']:.2f} ms errors {verify['errors']} "
              f"| ratio {row['ratio']:.2f} | ready {server.ready_ms:.0f} ms | RSS idle {idle:.1f} MB, "
              f"load {row['load_rss']:.1f} MB", flush=True)

    table = ["| algorithm | /health/live req/s | verify-token req/s | ratio | p50 ms | p99 ms | errors | start to ready ms | RSS idle MB | RSS under load MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        v = r["verify"]
        table.append(f"| {r['alg']} | {r['floor']['rps']:,.0f} | {v['rps']:,.0f} | {r['ratio']:.2f} | {v['p50']:.2f} | "
                     f"{v['p99']:.2f} | {v['errors']} | {r['ready_ms']:.0f} | {r['idle_rss']:.1f} | {r['load_rss']:.1f} |")
    print("\n" + "\n".join(table))
    if args.out:
        Path(args.out).write_text("\n".join([
            f"Machine: {machine}. Command: `scripts/bench.py --seconds {args.seconds}`.", "", *table, ""]))


if __name__ == "__main__":
    main()
