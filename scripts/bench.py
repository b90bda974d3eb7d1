#!/usr/bin/env python3
"""Benchmarks of the auth service, driven with wrk against a release build.

Usage: scripts/bench.py [--seconds N] [--only embedded|postgres] [--write]   (or `just bench`)
       scripts/bench.py --tls-cost [--seconds N]   (or `just bench-tls`)
       scripts/bench.py --data-plane [--seconds N] [--write]   (or `just bench-data-plane`)

Every figure is set against a baseline measured in the same run, on the same machine:
  1. verify-token requests/s and p50/p99 against the same server's /health/live (the
     framework floor), for HS256, RS256, ES256 and EdDSA;
  2. refresh requests/s (each request presents a refresh token no one presented before:
     a pool of pre-issued tokens, each chain continued with the successor it gets back);
  3. login requests/s at BCRYPT_COST 12 and 4 against the bcrypt bound (cores / time of one
     hash, measured by crates/auth-crypto/examples/bcrypt_bound.rs);
  4. verify-token p99 at a steady rate while a login flood saturates hashing, against the
     same rate on the idle server, with error counts;
  5. resident memory idle and under load; time from start to ready.
Configurations: the embedded default (SQLite, in-process cache) and PostgreSQL + Redis
(TEST_DATABASE_URL, TEST_REDIS_URL; a fresh database and key prefix per server, dropped after).
Each server is started by this script on a free port with a fresh data directory and the
rate limits and lockout set out of reach (this measures the service, not its refusals).

--tls-cost measures only what TLS to PostgreSQL costs: refresh and login (cost 4), on
PostgreSQL + Redis, with sslmode=disable against sslmode=require on the same server, same run
(the server must have ssl=on, as Debian's default cluster has).

--data-plane measures refresh and verify-token on PostgreSQL + Redis in each production
connection mode against the plain one (sslmode=disable, one Redis), same run: TLS to
PostgreSQL (sslmode=require), PgBouncer in session mode (the hop alone) and in transaction
mode (?pgbouncer=true; pgbouncer started by this script, Debian's package), and a
three-master Redis Cluster started by this script (redis-server and redis-cli 7, nothing kept
on disk). `just bench` runs it after the rest.

The table goes to stdout; with --write, into docs/benchmarks.md between the markers, with the
charts docs/benchmarks-targets.svg and docs/benchmarks-verify.svg. Needs wrk (apt-get install wrk).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
BINARY = TARGET / "release" / "auth-http"
BOUND = TARGET / "release" / "examples" / "bcrypt_bound"
SIGN = TARGET / "release" / "examples" / "sign_bound"
DOC = ROOT / "docs" / "benchmarks.md"
PASSWORD = "SecurePass123!"
CORES = os.cpu_count() or 1
ADMIN_DB = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

LUA = {
    # Refresh: each thread takes its own share of the pre-issued tokens; every response's new
    # refresh token goes back into the pool, so no token is ever presented twice.
    "refresh.lua": """
local tokens = {}
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  local share = math.floor(#all / tonumber(args[2]))
  for i = 1, share do tokens[i] = all[(id - 1) * share + i] end
end
function request()
  local token = table.remove(tokens, 1)
  -- An exhausted pool means lost chains: a bad token, counted as a non-2xx.
  if token == nil then token = "exhausted" end
  return wrk.format("POST", "/auth/refresh-token", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local next = string.match(body, '"refresh_token":"([^"]+)"')
  if next then tokens[#tokens + 1] = next end
end
""",
    "login.lua": """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"%s"}'
""" % PASSWORD,
    # MFA verify: each thread takes its own share of the prepared (mfa_token, code) pairs;
    # each pair is presented once (a token and a code are single use).
    "mfa_verify.lua": """
local pairs_ = {}
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  local share = math.floor(#all / tonumber(args[2]))
  for i = 1, share do pairs_[i] = all[(id - 1) * share + i] end
end
function request()
  local pair = table.remove(pairs_, 1)
  -- Every pair presented: this thread is done (wrk's rate counts until the threads stop).
  if pair == nil then wrk.thread:stop(); pair = "exhausted 000000" end
  local token, code = string.match(pair, "(%S+) (%S+)")
  return wrk.format("POST", "/auth/mfa/verify", {["Content-Type"] = "application/json"},
    '{"mfa_token":"' .. token .. '","code":"' .. code .. '"}')
end
""",
    # A steady rate: each connection waits this many ms between its requests.
    "paced.lua": """
local pause = 10
function init(args) pause = tonumber(args[1]) end
function delay() return pause end
""",
}


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
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {url}: {e.code} {e.read()[:300]!r}") from e


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Storage:
    """Where one server keeps its data: a fresh SQLite directory, or a fresh PostgreSQL
    database and Redis key prefix, removed by `drop`."""

    counter = 0

    def __init__(self, kind):
        Storage.counter += 1
        self.kind = kind
        self.name = f"auth_bench_{os.getpid()}_{Storage.counter}"
        self.env = {}
        if kind == "postgres":
            subprocess.run(["psql", "-q", ADMIN_DB, "-c", f"CREATE DATABASE {self.name}"], check=True,
                           capture_output=True)
            self.env = {"DATABASE_URL": ADMIN_DB.rsplit("/", 1)[0] + "/" + self.name,
                        "REDIS_URL": REDIS, "REDIS_KEY_PREFIX": f"{self.name}:"}

    def drop(self):
        if self.kind != "postgres":
            return
        subprocess.run(["psql", "-q", ADMIN_DB, "-c", f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"],
                       capture_output=True)
        if shutil.which("redis-cli"):
            keys = subprocess.run(["redis-cli", "-u", REDIS, "--scan", "--pattern", f"{self.name}:*"],
                                  capture_output=True, text=True).stdout.split()
            for i in range(0, len(keys), 500):
                subprocess.run(["redis-cli", "-u", REDIS, "DEL", *keys[i:i + 500]], capture_output=True)


class Server:
    """One service process on fresh storage; `peak_rss` is sampled every 100 ms."""

    def __init__(self, storage, env, db_params="", adjust=None):
        self.storage = Storage(storage)
        if db_params and "DATABASE_URL" in self.storage.env:
            self.storage.env["DATABASE_URL"] += db_params
        if adjust:
            self.storage.env = adjust(self.storage.env)
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
            "RATE_LIMIT_IP": "100000000",
            "RATE_LIMIT_IDENTIFIER": "100000000",
            "LOCKOUT_THRESHOLD": "100000000",
            "CLEANUP_INTERVAL": "0",
            **self.storage.env,
            **env,
        }
        self.log = open(f"{self.dir}/log", "w+")
        started = time.monotonic()
        self.proc = subprocess.Popen([str(BINARY), "serve"], env=full, stdout=subprocess.DEVNULL, stderr=self.log)
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/health/live", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - started > 60:
                    self.stop()
                    raise SystemExit(f"server did not start: {Path(self.dir, 'log').read_text()}")
                time.sleep(0.002)
        self.ready_ms = (time.monotonic() - started) * 1000
        time.sleep(0.5)
        self.idle_rss = rss_mb(self.proc.pid)
        self.peak_rss = self.idle_rss
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        while self._sampling:
            self.peak_rss = max(self.peak_rss, rss_mb(self.proc.pid))
            time.sleep(0.1)

    def mailed_token(self):
        for _ in range(200):
            found = re.findall(r"token=([A-Za-z0-9_-]+)", Path(self.dir, "log").read_text())
            if found:
                return found[-1]
            time.sleep(0.05)
        raise SystemExit("no mailed token in the log")

    def signed_in(self):
        """Registers and verifies the user `bench`; returns its first login."""
        http("POST", f"{self.base}/auth/register", {"email": "bench@example.com", "username": "bench",
             "password": PASSWORD, "name": "Bench", "surname": "Mark"})
        http("POST", f"{self.base}/auth/verify-email", {"token": self.mailed_token()})
        return self.login()

    def login(self):
        return http("POST", f"{self.base}/auth/login", {"username": "bench", "password": PASSWORD})

    def stop(self):
        self._sampling = False
        self.proc.terminate()
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.storage.drop()


def wrk(url, seconds, connections=32, threads=2, headers=(), script=None, args=(), timeout=10):
    """Runs wrk; returns requests/s, p50/p99 in ms, requests and errors."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", f"--timeout={timeout}s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if args:
        cmd += ["--", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": ms("50%"), "p99": ms("99%"), "errors": errors}


def generate_key(alg):
    pem = subprocess.run([str(BINARY), "keys", "generate", "--alg", alg], capture_output=True, text=True,
                         check=True).stdout
    end = "-----END PRIVATE KEY-----"
    return pem[: pem.index(end) + len(end)] + "\n"


def alg_env(alg, cost):
    env = {"BCRYPT_COST": str(cost)}
    if alg != "HS256":
        env["JWT_PRIVATE_KEY"] = generate_key(alg.lower())
        env["JWT_ALGORITHM"] = alg
    return env


def sign_bound(alg):
    out = subprocess.run([str(SIGN), alg, "1"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def bcrypt_bound(cost):
    out = subprocess.run([str(BOUND), str(cost), "3"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def log(text):
    print(text, flush=True)


def fmt_lat(r):
    return f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms"


def bench_config(kind, algs, seconds, lua):
    """Everything measured on one storage configuration."""
    res = {"kind": kind, "verify": [], "rss_idle": 0.0, "rss_load": 0.0}
    servers_ready = []

    def done_with(server):
        servers_ready.append(server.ready_ms)
        res["rss_idle"] = max(res["rss_idle"], server.idle_rss)
        server.stop()
        res["rss_load"] = max(res["rss_load"], server.peak_rss)

    # 1, 2 and login at cost 4: one server per algorithm, BCRYPT_COST 4.
    for alg in algs:
        env = alg_env(alg, 4)
        # Every request checked in full (JWT_VERIFY_CACHE=0): what a token seen for the first
        # time costs; against the floor of the server measured next.
        cold_server = Server(kind, {**env, "JWT_VERIFY_CACHE": "0"})
        try:
            cold_access = cold_server.signed_in()["access_token"]
            cold = wrk(f"{cold_server.base}/auth/verify-token", seconds,
                       headers=[f"Authorization: Bearer {cold_access}"])
        finally:
            done_with(cold_server)
        server = Server(kind, env)
        try:
            first = server.signed_in()
            access = first["access_token"]
            floor = wrk(f"{server.base}/health/live", seconds)
            verify = wrk(f"{server.base}/auth/verify-token", seconds, headers=[f"Authorization: Bearer {access}"])
            res["verify"].append({"alg": alg, "floor": floor, "verify": verify, "cold": cold})
            log(f"[{kind}] {alg:5} /health/live {floor['rps']:9,.0f} req/s | verify-token {verify['rps']:9,.0f} "
                f"req/s, {fmt_lat(verify)}, errors {verify['errors']} | ratio {verify['rps'] / floor['rps']:.2f} "
                f"| every token checked in full (JWT_VERIFY_CACHE=0): {cold['rps']:,.0f} req/s, {fmt_lat(cold)}, "
                f"ratio {cold['rps'] / floor['rps']:.2f}")
            # Refresh and login at cost 4 on every algorithm: each issues tokens, so each pays the
            # algorithm's signature (measured alone by the sign_bound example).
            v = res["verify"][-1]
            v["sign"] = sign_bound(alg)
            tokens = Path(server.dir, "tokens")
            tokens.write_text("\n".join(server.login()["refresh_token"] for _ in range(64)) + "\n")
            v["refresh"] = wrk(f"{server.base}/auth/refresh-token", seconds, connections=16,
                               script=lua["refresh.lua"], args=(tokens, 2))
            r = v["refresh"]
            log(f"[{kind}] {alg:5} refresh {r['rps']:,.0f} req/s ({r['rps'] / CORES:,.0f} per core), {fmt_lat(r)}, "
                f"errors {r['errors']}; one {alg} signature {v['sign']['sign_us']:.1f} us "
                f"(at most {v['sign']['sign_bound_per_s'] / CORES:,.0f} per core)")
            if "bound4" not in res:
                res["bound4"] = bcrypt_bound(4)
            v["login4"] = wrk(f"{server.base}/auth/login", seconds, connections=16, script=lua["login.lua"])
            r, b = v["login4"], res["bound4"]
            log(f"[{kind}] {alg:5} login cost 4: {r['rps']:,.0f}/s, bound {b['bound_per_s']:,.0f}/s "
                f"(one hash {b['hash_ms']:.3f} ms; all cores hashing: {b['parallel_per_s']:,.0f}/s) "
                f"-> {r['rps'] / b['bound_per_s']:.2f}, {fmt_lat(r)}, errors {r['errors']}")
            if alg == "RS256":
                res["refresh"], res["login4"] = v["refresh"], v["login4"]
        finally:
            done_with(server)

    # 3 at cost 12, and 4: verify-token at a steady rate, idle and during a login flood.
    server = Server(kind, alg_env("RS256", 12))
    try:
        access = server.signed_in()["access_token"]
        res["bound12"] = bcrypt_bound(12)
        login_seconds = max(2 * seconds, 10)
        res["login12"] = wrk(f"{server.base}/auth/login", login_seconds, connections=8, script=lua["login.lua"],
                             timeout=30)
        r, b = res["login12"], res["bound12"]
        log(f"[{kind}] login cost 12: {r['rps']:.2f}/s, bound {b['bound_per_s']:.2f}/s "
            f"(one hash {b['hash_ms']:.1f} ms; all cores hashing: {b['parallel_per_s']:.2f}/s) "
            f"-> {r['rps'] / b['bound_per_s']:.2f}, {fmt_lat(r)}, errors {r['errors']}")
        # 8 connections, each pausing 8 ms: about 1,000 verify-token requests/s.
        paced = {"connections": 8, "script": lua["paced.lua"], "args": (8,),
                 "headers": [f"Authorization: Bearer {access}"]}
        res["idle"] = wrk(f"{server.base}/auth/verify-token", seconds, **paced)
        flood_box = {}
        flood = threading.Thread(target=lambda: flood_box.update(wrk(
            f"{server.base}/auth/login", seconds + 3, connections=8, script=lua["login.lua"], timeout=30)))
        flood.start()
        time.sleep(1.5)
        res["flooded"] = wrk(f"{server.base}/auth/verify-token", seconds, **paced)
        flood.join()
        res["flood"] = flood_box
        i, f = res["idle"], res["flooded"]
        log(f"[{kind}] verify-token at ~{i['rps']:,.0f} req/s: idle {fmt_lat(i)}, errors {i['errors']} | during a "
            f"login flood ({flood_box['rps']:.1f} logins/s, errors {flood_box['errors']}): {fmt_lat(f)}, "
            f"errors {f['errors']} -> p99 x{f['p99'] / i['p99']:.2f}")
    finally:
        done_with(server)
    res["ready_ms"] = min(servers_ready)
    log(f"[{kind}] RSS idle {res['rss_idle']:.1f} MB, under load {res['rss_load']:.1f} MB; "
        f"start to ready {res['ready_ms']:.0f} ms (fastest of {len(servers_ready)} starts)")
    return res


def summary(res):
    """(measurement, result, baseline, ratio, target, met) rows of one configuration."""
    rows = []
    rs = next((v for v in res["verify"] if v["alg"] == "RS256"), None)
    if rs:
        ratio = rs["verify"]["rps"] / rs["floor"]["rps"]
        rows.append(("verify-token RS256, req/s", f"{rs['verify']['rps']:,.0f} (p50 {rs['verify']['p50']:.2f} ms, "
                     f"p99 {rs['verify']['p99']:.2f} ms)", f"/health/live {rs['floor']['rps']:,.0f}",
                     ratio, "≥ 0.50", ratio >= 0.5))
        cold = rs["cold"]["rps"] / rs["floor"]["rps"]
        rows.append(("verify-token RS256, every token checked in full (JWT_VERIFY_CACHE=0)",
                     f"{rs['cold']['rps']:,.0f} (p50 {rs['cold']['p50']:.2f} ms, p99 {rs['cold']['p99']:.2f} ms)",
                     f"/health/live {rs['floor']['rps']:,.0f}", cold, "≥ 0.50", cold >= 0.5))
    if "refresh" in res:
        r = res["refresh"]
        per_core = r["rps"] / CORES
        rows.append(("refresh, req/s per core", f"{per_core:,.0f} ({r['rps']:,.0f} on {CORES} cores; p50 "
                     f"{r['p50']:.2f} ms, p99 {r['p99']:.2f} ms; {r['errors']} errors)", "1,200 per core",
                     per_core / 1200, "≥ 1.00", per_core >= 1200 and r["errors"] == 0))
    for cost, target in ((12, 0.9), (4, 0.8)):
        if f"login{cost}" in res:
            r, b = res[f"login{cost}"], res[f"bound{cost}"]
            ratio = r["rps"] / b["bound_per_s"]
            rows.append((f"login at BCRYPT_COST {cost}, req/s", f"{r['rps']:,.1f} (p50 {r['p50']:.1f} ms; "
                         f"{r['errors']} errors)", f"bcrypt bound {b['bound_per_s']:,.1f} ({CORES} ÷ "
                         f"{b['hash_ms']:.2f} ms)", ratio, f"≥ {target:.2f}", ratio >= target and r["errors"] == 0))
    if "flooded" in res:
        i, f, fl = res["idle"], res["flooded"], res["flood"]
        ratio = f["p99"] / i["p99"]
        errors = i["errors"] + f["errors"] + fl["errors"]
        rows.append(("verify-token p99 during a login flood", f"{f['p99']:.2f} ms at {f['rps']:,.0f} req/s "
                     f"({fl['rps']:.1f} logins/s; {errors} errors)", f"idle p99 {i['p99']:.2f} ms",
                     ratio, "≤ 3.0", ratio <= 3 and errors == 0))
    rows.append(("RSS idle / under load", f"{res['rss_idle']:.1f} MB / {res['rss_load']:.1f} MB", "–", None,
                 "≤ 50 / ≤ 100 MB", res["rss_idle"] <= 50 and res["rss_load"] <= 100))
    rows.append(("start to ready", f"{res['ready_ms']:.0f} ms", "–", None, "≤ 1,000 ms", res["ready_ms"] <= 1000))
    return rows


def tables(results):
    label = {"embedded": "embedded default (SQLite, in-process cache)", "postgres": "PostgreSQL + Redis"}
    out = ["| configuration | measurement | result | baseline, same run | ratio | target | met |",
           "|---|---|---|---|---:|---|:-:|"]
    for res in results:
        for name, result, base, ratio, target, met in summary(res):
            r = "–" if ratio is None else f"{ratio:.2f}"
            out.append(f"| {label[res['kind']]} | {name} | {result} | {base} | {r} | {target} | "
                       f"{'yes' if met else '**no**'} |")
    out += ["", "| configuration | algorithm | /health/live req/s | verify-token req/s | ratio | p50 ms | p99 ms | "
            "errors | every token in full (cache off) req/s | ratio | p99 ms | refresh req/s per core | "
            "one signature µs | login at cost 4 ÷ bcrypt bound |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for v in res["verify"]:
            f, x, c = v["floor"], v["verify"], v["cold"]
            out.append(f"| {label[res['kind']]} | {v['alg']} | {f['rps']:,.0f} | {x['rps']:,.0f} | "
                       f"{x['rps'] / f['rps']:.2f} | {x['p50']:.2f} | {x['p99']:.2f} | {x['errors'] + c['errors']} | "
                       f"{c['rps']:,.0f} | {c['rps'] / f['rps']:.2f} | {c['p99']:.2f} | "
                       f"{v['refresh']['rps'] / CORES:,.0f} | {v['sign']['sign_us']:.1f} | "
                       f"{v['login4']['rps'] / res['bound4']['bound_per_s']:.2f} |")
    return out


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_bars(title, rows, scale_max, marker, marker_label, unit=""):
    """A horizontal bar chart: rows of (label, value, text, colour)."""
    left = 20 + 7 * max((len(r[0]) for r in rows), default=10)
    bar_w, row_h = 420, 26
    width = left + bar_w + 20 + 7 * max((len(r[2]) for r in rows), default=10)
    height = 60 + row_h * len(rows) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="22" font-size="15" font-weight="bold">{esc(title)}</text>']
    for i, (label, value, text, colour) in enumerate(rows):
        y = 45 + i * row_h
        w = max(1.0, min(value, scale_max) / scale_max * bar_w)
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{esc(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}">{esc(text)}</text>')
    if marker is not None:
        x = left + marker / scale_max * bar_w
        bottom = 45 + row_h * len(rows)
        parts.append(f'<line x1="{x:.1f}" y1="38" x2="{x:.1f}" y2="{bottom}" stroke="black" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{esc(marker_label)}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" fill="#555">{esc(unit)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def charts(results):
    short = {"embedded": "SQLite", "postgres": "PG + Redis"}
    target_rows, verify_rows = [], []
    for res in results:
        for name, result, base, ratio, target, met in summary(res):
            if ratio is None:
                continue
            # Share of the target reached: >= 1 is met (p99's target is a ceiling, so inverted).
            share = 3 / ratio if "p99" in name else ratio / float(target.split()[-1])
            label = name.replace("every token checked in full (JWT_VERIFY_CACHE=0)", "cache off")
            target_rows.append((f"{short[res['kind']]}: {label}", share, f"{ratio:.2f} (target {target})",
                                "#2e7d32" if met else "#ef6c00"))
        for v in res["verify"]:
            f, x = v["floor"]["rps"], v["verify"]["rps"]
            verify_rows.append((f"{short[res['kind']]}: /health/live ({v['alg']} server)", f, f"{f:,.0f} req/s", "#90a4ae"))
            verify_rows.append((f"{short[res['kind']]}: verify-token {v['alg']}", x, f"{x:,.0f} req/s ({x / f:.2f})",
                                "#1565c0"))
            c = v["cold"]["rps"]
            verify_rows.append((f"{short[res['kind']]}: {v['alg']}, cache off", c, f"{c:,.0f} req/s ({c / f:.2f})",
                                "#64b5f6"))
    top = max(r[1] for r in verify_rows) * 1.05 if verify_rows else 1
    return (svg_bars("Share of each target reached (1.0 = target met)", target_rows, 2.0, 1.0, "target",
                     "bars: measured ÷ target (p99: target ÷ measured); scale cut at 2"),
            svg_bars("verify-token against the /health/live floor, same server, same run", verify_rows, top, None, "",
                     "requests per second, wrk -t2 -c32 on the same machine"))


def tls_cost(seconds, lua):
    """Refresh and login at cost 4 on PostgreSQL + Redis, without and with TLS to PostgreSQL."""
    rows = []
    for mode in ("disable", "require"):
        server = Server("postgres", alg_env("HS256", 4), db_params=f"?sslmode={mode}")
        try:
            server.signed_in()
            tokens = Path(server.dir, "tokens")
            tokens.write_text("\n".join(server.login()["refresh_token"] for _ in range(64)) + "\n")
            refresh = wrk(f"{server.base}/auth/refresh-token", seconds, connections=16,
                          script=lua["refresh.lua"], args=(tokens, 2))
            rows.append((mode, refresh))
            log(f"[sslmode={mode}] refresh {refresh['rps']:,.0f} req/s, {fmt_lat(refresh)}, errors {refresh['errors']}")
        finally:
            server.stop()
    (_, plain), (_, tls) = rows
    log(f"TLS to PostgreSQL: refresh {tls['rps']:,.0f} vs {plain['rps']:,.0f} req/s without "
        f"(ratio {tls['rps'] / plain['rps']:.2f}); p50 {tls['p50']:.2f} vs {plain['p50']:.2f} ms")


class PgBouncer:
    """A pgbouncer in transaction mode in front of TEST_DATABASE_URL's server, on a free port."""

    def __init__(self, pool_size=20, mode="transaction"):
        self.mode = mode
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise SystemExit("pgbouncer not found: apt-get install pgbouncer")
        m = re.match(r"postgres(?:ql)?://(?:([^:@/]+)(?::([^@/]*))?@)?([^:/?]+)(?::(\d+))?/", ADMIN_DB)
        if not m:
            raise SystemExit(f"cannot read host and port from {ADMIN_DB}")
        user, password, host, port = m.group(1) or "postgres", m.group(2) or "", m.group(3), m.group(4) or "5432"
        self.dir = tempfile.mkdtemp(prefix="auth-bench-pgbouncer-")
        self.port = free_port()
        Path(self.dir, "users.txt").write_text(f'"{user}" "{password}"\n')
        Path(self.dir, "pgbouncer.ini").write_text(
            f"[databases]\n* = host={host} port={port}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {self.dir}/users.txt\n"
            f"pool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 1000\n"
            f"server_reset_query =\nlogfile = {self.dir}/pgbouncer.log\n"
            # Session mode serves the plain URL as it is: its statement_timeout startup option
            # is dropped (only to measure the hop itself).
            + ("ignore_startup_parameters = extra_float_digits,options\n" if mode == "session" else ""))
        cmd = [binary, f"{self.dir}/pgbouncer.ini"]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root.
            subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit(f"pgbouncer did not start: {Path(self.dir, 'pgbouncer.log').read_text()}")

    def adjust(self, env):
        """A server's variables with DATABASE_URL through this pgbouncer."""
        direct = env["DATABASE_URL"]
        name = direct.rsplit("/", 1)[1].split("?")[0]
        user = re.match(r"postgres(?:ql)?://([^:@/]+)", direct)
        flag = "pgbouncer=true&" if self.mode == "transaction" else ""
        return {**env, "DATABASE_DIRECT_URL": direct,
                "DATABASE_URL": f"postgres://{user.group(1) if user else 'postgres'}@127.0.0.1:{self.port}/{name}"
                                f"?{flag}sslmode=disable"}

    def stop(self):
        subprocess.run(["pkill", "-f", f"{self.dir}/pgbouncer.ini"], capture_output=True)
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three redis-server masters with cluster mode on, on free loopback ports in a temporary
    directory, joined by `redis-cli --cluster create`; `stop` kills them."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="auth-bench-cluster-")
        self.ports = [free_port() for _ in range(3)]
        self.procs = []
        for port in self.ports:
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf", "--cluster-port", str(free_port()),
                 "--save", "", "--appendonly", "no", "--dir", self.dir, "--logfile", f"{self.dir}/{port}.log"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            for port in self.ports:
                self._wait(lambda: subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True,
                                                  text=True).stdout.strip() == "PONG")
            subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                            "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True)
            for port in self.ports:
                self._wait(lambda: "cluster_state:ok" in subprocess.run(
                    ["redis-cli", "-p", str(port), "CLUSTER", "INFO"], capture_output=True, text=True).stdout)
        except BaseException:
            self.stop()
            raise
        self.nodes = ",".join(f"redis://127.0.0.1:{p}" for p in self.ports)

    @staticmethod
    def _wait(ready, seconds=30):
        deadline = time.monotonic() + seconds
        while not ready():
            if time.monotonic() > deadline:
                raise SystemExit("the Redis Cluster did not come up")
            time.sleep(0.05)

    def stop(self):
        for proc in self.procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def data_plane_modes():
    """(label, start) of each connection mode; start() returns (db_params, adjust, stop)."""
    def plain():
        return "?sslmode=disable", None, lambda: None

    def tls():
        return "?sslmode=require", None, lambda: None

    def pgbouncer():
        bouncer = PgBouncer()
        return "", bouncer.adjust, bouncer.stop

    def session_pgbouncer():
        bouncer = PgBouncer(mode="session")
        return "", bouncer.adjust, bouncer.stop

    def cluster():
        if not shutil.which("redis-server"):
            raise SystemExit("redis-server not found: apt-get install redis-server")
        nodes = RedisCluster()

        def adjust(env):
            rest = {k: v for k, v in env.items() if k != "REDIS_URL"}
            return {**rest, "REDIS_CLUSTER_NODES": nodes.nodes}
        return "?sslmode=disable", adjust, nodes.stop

    return [("plain (sslmode=disable, one Redis)", plain), ("TLS to PostgreSQL (sslmode=require)", tls),
            ("PgBouncer, session mode (the hop alone, no flag)", session_pgbouncer),
            ("PgBouncer, transaction mode (pgbouncer=true)", pgbouncer),
            ("Redis Cluster, three masters (REDIS_CLUSTER_NODES)", cluster)]


def data_plane(seconds, lua):
    """Refresh and verify-token (HS256, cost 4) on PostgreSQL + Redis in each connection mode."""
    rows = []
    for label, start in data_plane_modes():
        db_params, adjust, stop = start()
        try:
            server = Server("postgres", alg_env("HS256", 4), db_params=db_params, adjust=adjust)
            try:
                access = server.signed_in()["access_token"]
                verify = wrk(f"{server.base}/auth/verify-token", seconds, headers=[f"Authorization: Bearer {access}"])
                tokens = Path(server.dir, "tokens")
                tokens.write_text("\n".join(server.login()["refresh_token"] for _ in range(64)) + "\n")
                refresh = wrk(f"{server.base}/auth/refresh-token", seconds, connections=16,
                              script=lua["refresh.lua"], args=(tokens, 2))
            finally:
                server.stop()
        finally:
            stop()
        rows.append({"mode": label, "refresh": refresh, "verify": verify})
        log(f"[{label}] refresh {refresh['rps']:,.0f} req/s, {fmt_lat(refresh)}, errors {refresh['errors']} | "
            f"verify-token {verify['rps']:,.0f} req/s, {fmt_lat(verify)}, errors {verify['errors']}")
    return rows


def totp_code(secret, step):
    """RFC 6238 (SHA-1, 6 digits) at time step `step`."""
    import hashlib
    import hmac
    import struct
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def base32_decode(text):
    import base64
    return base64.b32decode(text + "=" * (-len(text) % 8))


def mfa_accounts(server, count):
    """`count` verified accounts with TOTP confirmed: [(username, secret)]. Registered and
    verified concurrently, the verification tokens read from the mail log."""
    from concurrent.futures import ThreadPoolExecutor
    run = f"{os.getpid()}{int(time.time()) % 100000}"
    names = [f"mfa{run}x{i}" for i in range(count)]
    mailed = lambda: set(re.findall(r"verify-email\?token=([A-Za-z0-9_-]+)", Path(server.dir, "log").read_text()))
    used = mailed()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: http("POST", f"{server.base}/auth/register", {
            "email": f"{n}@example.com", "username": n, "password": PASSWORD, "name": "Bench",
            "surname": "Mark"}), names))
        time.sleep(0.5)
        tokens = mailed() - used
        list(pool.map(lambda t: http("POST", f"{server.base}/auth/verify-email", {"token": t}), tokens))

        def enable(name):
            access = http("POST", f"{server.base}/auth/login", {"username": name, "password": PASSWORD})["access_token"]
            enrol = http("POST", f"{server.base}/users/mfa/totp", {"password": PASSWORD}, token=access)
            secret = base32_decode(enrol["secret"])
            # The code of the step before the current one, or (should the step have moved on
            # meanwhile) of the current one; the benchmark waits for later steps.
            for offset in (-1, 0):
                step = int(time.time()) // 30 + offset
                try:
                    http("POST", f"{server.base}/users/mfa/totp/confirm", {"code": totp_code(secret, step)},
                         token=access)
                    return name, secret
                except SystemExit:
                    if offset == 0:
                        raise
            return name, secret
        return list(pool.map(enable, names))


def mfa_cost(seconds, lua):
    """POST /auth/mfa/verify against POST /auth/login (BCRYPT_COST 4 and 12), on SQLite and on
    PostgreSQL + Redis: what the second step of a login costs next to the first."""
    from concurrent.futures import ThreadPoolExecutor
    rows = []
    for kind in ("embedded", "postgres"):
        server = Server(kind, alg_env("HS256", 4))
        try:
            server.signed_in()
            login4 = wrk(f"{server.base}/auth/login", seconds, connections=16, script=lua["login.lua"])
            # Each account can complete 3 logins in one 30 s step (its codes of the step before,
            # the step itself and the step after are each accepted once); the run is placed
            # inside one step, so every prepared pair is valid when presented.
            accounts = mfa_accounts(server, int(os.environ.get("BENCH_MFA_ACCOUNTS", "2500")))
            # Two steps after the last confirmation (its step stays claimed), at a step's start.
            ready = int(time.time()) // 30 + 2
            while int(time.time()) // 30 < ready or int(time.time()) % 30 > 3:
                time.sleep(0.2)
            step = int(time.time()) // 30
            with ThreadPoolExecutor(8) as pool:
                def tokens(account):
                    name, secret = account
                    return [(http("POST", f"{server.base}/auth/login",
                                  {"username": name, "password": PASSWORD})["mfa_token"], totp_code(secret, s))
                            for s in (step - 1, step, step + 1)]
                prepared = [pair for account in pool.map(tokens, accounts) for pair in account]
            pair_file = Path(server.dir, "mfa_pairs")
            pair_file.write_text("\n".join(f"{t} {c}" for t, c in prepared) + "\n")
            if int(time.time()) // 30 != step:
                raise SystemExit("preparing the MFA pairs took longer than one TOTP step: "
                                 "set BENCH_MFA_ACCOUNTS lower")
            left = 30 - int(time.time()) % 30 - 1
            verify = wrk(f"{server.base}/auth/mfa/verify", min(seconds, max(left, 1)), connections=16,
                         script=lua["mfa_verify.lua"], args=(pair_file, 2))
        finally:
            server.stop()
        server = Server(kind, alg_env("HS256", 12))
        try:
            server.signed_in()
            # One connection: the latency of one login, without queueing for the hasher.
            login12 = wrk(f"{server.base}/auth/login", max(seconds, 10), connections=1, threads=1,
                          script=lua["login.lua"], timeout=30)
        finally:
            server.stop()
        row = {"kind": kind, "login4": login4, "verify": verify, "login12": login12, "pairs": len(prepared)}
        rows.append(row)
        log(f"[{kind}] login (cost 4) {login4['rps']:,.0f} req/s, {fmt_lat(login4)} | mfa/verify {verify['rps']:,.0f} "
            f"req/s, {fmt_lat(verify)}, {verify['requests']} of {len(prepared)} pairs, errors {verify['errors']} | "
            f"one login at cost 12: {fmt_lat(login12)}")
    return rows


def mfa_table(rows):
    lines = ["| storage | login, cost 4: req/s (p50 / p99 ms) | mfa/verify: req/s (p50 / p99 ms), requests | "
             "verify ÷ login, cost 4 | one login at cost 12: p50 ms | verify's p50 next to it | errors |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        l4, v, l12 = row["login4"], row["verify"], row["login12"]
        label = "SQLite, in-process cache" if row["kind"] == "embedded" else "PostgreSQL + Redis"
        # The last request of each wrk thread is the one it stopped on (no pair left).
        errors = l4["errors"] + max(v["errors"] - 16, 0) + l12["errors"]
        lines.append(f"| {label} | {l4['rps']:,.0f} ({l4['p50']:.2f} / {l4['p99']:.2f}) | {v['rps']:,.0f} "
                     f"({v['p50']:.2f} / {v['p99']:.2f}), {v['requests']:,} of {row['pairs']:,} pairs | "
                     f"{v['rps'] / l4['rps']:.2f} | {l12['p50']:.1f} | +{100 * v['p50'] / l12['p50']:.1f} % | "
                     f"{errors} |")
    return lines


def report_mfa(rows, machine, seconds, write):
    table = mfa_table(rows)
    log("\n" + "\n".join(table) + "\n")
    if write:
        today = datetime.date.today().isoformat()
        block = [f"Machine: {machine}. Date: {today}. Command: `just bench-mfa {seconds} --write` "
                 f"(`scripts/bench.py --mfa --seconds {seconds} --write`); HS256; wrk -t2 -c16 (login at cost 4, "
                 "verify), wrk -t1 -c1 (login at cost 12); verify with TOTP codes, each (mfa_token, code) pair "
                 "presented once, the run ending when they are spent.", "",
                 *table]
        write_block("<!-- mfa:start -->", "<!-- mfa:end -->", block)
        log(f"written: {DOC.relative_to(ROOT)} (MFA)")


def data_plane_table(rows):
    base = rows[0]
    lines = ["| connection mode | refresh req/s | vs plain | refresh p50 / p99 ms | verify-token req/s | vs plain | "
             "verify-token p50 / p99 ms | errors |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r, v = row["refresh"], row["verify"]
        lines.append(f"| {row['mode']} | {r['rps']:,.0f} | {r['rps'] / base['refresh']['rps']:.2f} | "
                     f"{r['p50']:.2f} / {r['p99']:.2f} | {v['rps']:,.0f} | {v['rps'] / base['verify']['rps']:.2f} | "
                     f"{v['p50']:.2f} / {v['p99']:.2f} | {r['errors'] + v['errors']} |")
    return lines


def write_block(start, end, block):
    text = DOC.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{DOC} lacks the markers {start} … {end}")
    head, rest = text.split(start, 1)
    DOC.write_text(head + start + "\n" + "\n".join(block) + "\n" + end + rest.split(end, 1)[1])


def report_data_plane(rows, machine, seconds, write):
    table = data_plane_table(rows)
    log("\n" + "\n".join(table) + "\n")
    if write:
        today = datetime.date.today().isoformat()
        block = [f"Machine: {machine}. Date: {today}. Command: `just bench-data-plane {seconds} --write` "
                 f"(`scripts/bench.py --data-plane --seconds {seconds} --write`); HS256, BCRYPT_COST 4, "
                 "wrk -t2 (refresh -c16, verify-token -c32).", "", *table]
        write_block("<!-- data-plane:start -->", "<!-- data-plane:end -->", block)
        log(f"written: {DOC.relative_to(ROOT)} (data plane)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="seconds per wrk run (default 6)")
    parser.add_argument("--only", choices=["embedded", "postgres"], help="one configuration only")
    parser.add_argument("--render", metavar="JSON",
                        help="measure nothing: render the results a previous run saved (target/bench-results.json)")
    parser.add_argument("--tls-cost", action="store_true",
                        help="only the cost of TLS to PostgreSQL on refresh (sslmode=require vs disable)")
    parser.add_argument("--data-plane", action="store_true",
                        help="only refresh and verify-token in each production connection mode against the plain one")
    parser.add_argument("--mfa", action="store_true",
                        help="only POST /auth/mfa/verify against POST /auth/login, on both storages")
    parser.add_argument("--write", action="store_true",
                        help="write the results into docs/benchmarks.md and its two SVG charts")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        return report(saved["results"], saved["machine"], saved["seconds"], saved["took"], args.write)
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    began = time.monotonic()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "auth-http"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "auth-crypto", "--example", "bcrypt_bound",
                    "--example", "sign_bound"], cwd=ROOT, check=True)
    built = time.monotonic()
    machine = f"{CORES} cores, {platform.machine()}, Linux {platform.release()}"
    log(f"machine: {machine}; release build; wrk on the same machine; {args.seconds} s per run")
    with tempfile.TemporaryDirectory(prefix="auth-bench-lua-") as lua_dir:
        lua = {}
        for name, text in LUA.items():
            Path(lua_dir, name).write_text(text)
            lua[name] = str(Path(lua_dir, name))
        if args.tls_cost:
            return tls_cost(args.seconds, lua)
        if args.data_plane:
            return report_data_plane(data_plane(args.seconds, lua), machine, args.seconds, args.write)
        if args.mfa:
            return report_mfa(mfa_cost(args.seconds, lua), machine, args.seconds, args.write)
        results = []
        if args.only in (None, "embedded"):
            results.append(bench_config("embedded", ["HS256", "RS256", "ES256", "EdDSA"], args.seconds, lua))
        if args.only in (None, "postgres"):
            results.append(bench_config("postgres", ["HS256", "RS256"], args.seconds, lua))
            plane = data_plane(args.seconds, lua)
    took = time.monotonic() - built
    saved = ROOT / "target" / "bench-results.json"
    saved.write_text(json.dumps({"results": results, "machine": machine, "seconds": args.seconds, "took": took}))
    report(results, machine, args.seconds, took, args.write)
    if args.only in (None, "postgres"):
        report_data_plane(plane, machine, args.seconds, args.write)
    log(f"measured in {took:.0f} s (+ {built - began:.0f} s of build); raw results in {saved.relative_to(ROOT)}")


def report(results, machine, seconds, took, write):
    table = tables(results)
    log("\n" + "\n".join(table) + "\n")
    if write:
        today = datetime.date.today().isoformat()
        block = [f"Machine: {machine}. Date: {today}. Command: `just bench {seconds} --write` "
                 f"(`scripts/bench.py --seconds {seconds} --write`), {took:.0f} s of measuring.", "",
                 "![Share of each target reached](benchmarks-targets.svg)", "", *table, "",
                 "![verify-token against the floor](benchmarks-verify.svg)"]
        text = DOC.read_text()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"{DOC} lacks the markers {start} … {end}")
        head, rest = text.split(start, 1)
        DOC.write_text(head + start + "\n" + "\n".join(block) + "\n" + end + rest.split(end, 1)[1])
        targets_svg, verify_svg = charts(results)
        (DOC.parent / "benchmarks-targets.svg").write_text(targets_svg)
        (DOC.parent / "benchmarks-verify.svg").write_text(verify_svg)
        log(f"written: {DOC.relative_to(ROOT)}, docs/benchmarks-targets.svg, docs/benchmarks-verify.svg")


if __name__ == "__main__":
    main()
