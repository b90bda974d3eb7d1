#!/usr/bin/env python3
"""Writes deploy/grafana/auth-service.json, the Grafana dashboard (run after changing a panel;
.ci/run checks that the committed JSON is what this script writes)."""
import json
import sys
from pathlib import Path
DS = {"type": "prometheus", "uid": "prometheus"}
R = "$__rate_interval"
panels = []
y = 0
def row(title):
    global y
    panels.append({"id": len(panels) + 1, "type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
    y += 1
x = 0
def panel(title, targets, unit="short", kind="timeseries", w=8, desc=""):
    global x, y
    if x + w > 24:
        x = 0; y += 8
    p = {"id": len(panels) + 1, "type": kind, "title": title, "description": desc, "datasource": DS,
         "gridPos": {"h": 8, "w": w, "x": x, "y": y},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}},
         "targets": [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i)} for i, (e, l) in enumerate(targets)]}
    panels.append(p)
    x += w
def newrow(title):
    global x, y
    if x: y += 8
    x = 0
    row(title)

J = 'job="auth"'
newrow("Service")
panel("Ready instances", [(f'sum(auth_ready{{{J}}})', "ready"), (f'count(up{{{J}}})', "scraped")], kind="stat", w=4,
      desc="auth_ready: /health/ready's answer at each scrape (1 ready, 0 not).")
panel("Dependencies", [(f'min by (dependency) (auth_dependency_up{{{J}}})', "{{dependency}}")], kind="stat", w=8,
      desc="1 when every instance reaches it (database, cache, mail outbox).")
panel("Version", [(f'count by (version) (auth_build_info{{{J}}})', "{{version}}")], kind="stat", w=4)
panel("Requests per second", [(f'sum(rate(http_requests_total{{{J}}}[{R}]))', "requests/s")], unit="reqps", kind="stat", w=4)
panel("5xx ratio", [(f'(sum(rate(http_requests_total{{{J},status=~"5.."}}[{R}])) or vector(0)) / sum(rate(http_requests_total{{{J}}}[{R}]))', "5xx")], unit="percentunit", kind="stat", w=4,
      desc="Availability SLO: 99.9 % of requests without a 5xx (alerts AuthErrorBudgetBurn*).")

newrow("Traffic, errors and latency")
panel("Requests by route", [(f'sum by (route) (rate(http_requests_total{{{J}}}[{R}]))', "{{route}}")], unit="reqps", w=12)
panel("Answers by status", [(f'sum by (status) (rate(http_requests_total{{{J}}}[{R}]))', "{{status}}")], unit="reqps", w=12)
for q in ("0.5", "0.95", "0.99"):
    panel(f"Latency p{int(float(q) * 100)} by route", [(f'histogram_quantile({q}, sum by (le, route) (rate(http_request_duration_seconds_bucket{{{J}}}[{R}])))', "{{route}}")], unit="s", w=8)
panel("Slow requests (over 250 ms, no password hashing)", [(f'1 - sum(rate(http_request_duration_seconds_bucket{{{J},le="0.25",route!~"/auth/(login|register|reset-password)|/users/(change-password|delete-account)"}}[{R}])) / sum(rate(http_request_duration_seconds_count{{{J},route!~"/auth/(login|register|reset-password)|/users/(change-password|delete-account)"}}[{R}]))', "slow share")], unit="percentunit", w=12,
      desc="Latency SLO: 99 % within 250 ms (alerts AuthLatencyBudgetBurn*).")
panel("verify-token by outcome", [(f'sum by (outcome) (rate(auth_verify_token_total{{{J}}}[{R}]))', "{{outcome}}")], unit="reqps", w=12)

newrow("Logins and suspicious activity")
panel("Logins by outcome", [(f'sum by (outcome) (rate(auth_logins_total{{{J}}}[{R}]))', "{{outcome}}")], unit="reqps", w=8)
panel("Identifiers with failed logins (5 min)", [(f'sum(auth_login_failed_identifiers{{{J}}})', "identifiers")], w=8,
      desc="Distinct identifiers with a failed login in the last 5 minutes, summed over instances: many identifiers failing is credential stuffing (alert AuthCredentialStuffing).")
panel("Lockouts", [(f'sum(increase(auth_lockouts_total{{{J}}}[{R}]))', "lockouts")], w=8)
panel("Rate-limited requests by action", [(f'sum by (action) (rate(auth_rate_limited_total{{{J}}}[{R}]))', "{{action}}")], unit="reqps", w=8)
panel("Refresh token reuse detected", [(f'sum(increase(auth_refresh_reuse_detected_total{{{J}}}[{R}]))', "replays")], w=8)
panel("Audit events by kind", [(f'sum by (event, outcome) (rate(auth_audit_events_total{{{J}}}[{R}]))', "{{event}} {{outcome}}")], unit="reqps", w=8)

newrow("Tokens")
panel("Tokens issued and refreshed", [(f'sum(rate(auth_tokens_issued_total{{{J}}}[{R}]))', "issued (logins)"), (f'sum(rate(auth_tokens_refreshed_total{{{J}}}[{R}]))', "refreshed")], unit="reqps", w=12)
panel("Revocations by reason", [(f'sum by (reason) (rate(auth_tokens_revoked_total{{{J}}}[{R}]))', "{{reason}}")], unit="reqps", w=12)

newrow("Pools and hashing")
panel("Database pool", [(f'sum by (state) (auth_db_pool_connections{{{J}}})', "{{state}}"), (f'sum(auth_db_pool_waiting{{{J}}})', "waiting"), (f'sum(auth_db_pool_max_connections{{{J}}})', "max")], w=8)
panel("Redis pool", [(f'sum by (state) (auth_redis_pool_connections{{{J}}})', "{{state}}"), (f'sum(auth_redis_pool_waiting{{{J}}})', "waiting"), (f'sum(auth_redis_pool_max_connections{{{J}}})', "max")], w=8)
panel("Password hashing", [(f'sum(auth_password_hash_in_flight{{{J}}})', "hashing"), (f'sum(auth_password_hash_waiting{{{J}}})', "waiting for a permit")], w=8)
panel("Hash wait and hash time p95", [(f'histogram_quantile(0.95, sum by (le) (rate(auth_password_hash_wait_seconds_bucket{{{J}}}[{R}])))', "wait"), (f'histogram_quantile(0.95, sum by (le) (rate(auth_password_hash_seconds_bucket{{{J}}}[{R}])))', "hash")], unit="s", w=12)
panel("Revocation list rebuilt and Redis fallback", [(f'sum by (reason) (increase(auth_revocation_rewarms_total{{{J}}}[{R}])) or vector(0)', "rebuilt {{reason}}"), (f'sum(rate(auth_cache_fallback_total{{{J}}}[{R}])) or vector(0)', "fallback/s")], w=12,
      desc="Both stay at 0 while Redis is healthy.")

newrow("Mail")
panel("Mail queue", [(f'sum(auth_mail_queue_depth{{{J}}})', "queued"), (f'max(auth_mail_dead{{{J}}})', "dead")], w=8)
panel("Oldest queued mail", [(f'max(auth_mail_queue_oldest_age_seconds{{{J}}})', "age")], unit="s", w=8)
panel("Mails sent by kind", [(f'sum by (kind) (rate(auth_mail_sent_total{{{J}}}[{R}]))', "{{kind}}")], unit="reqps", w=8)

dash = {"title": "Auth service", "uid": "auth-service", "tags": ["auth"], "timezone": "utc", "schemaVersion": 39,
        "version": 1, "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "description": "The auth service: traffic, errors, latency, logins and suspicious activity, tokens, pools, hashing, mail. Queries assume the scrape job `auth` (docs/operations.md).",
        "templating": {"list": []}, "annotations": {"list": []}, "panels": panels}
text = json.dumps(dash, indent=2, ensure_ascii=False) + "\n"
if "--stdout" in sys.argv:
    sys.stdout.write(text)
else:
    (Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "auth-service.json").write_text(text)
    print(len([p for p in panels if p["type"] != "row"]), "panels written to deploy/grafana/auth-service.json")
