#!/usr/bin/env bash
# The operators' files, checked offline: the Prometheus rules (`promtool check rules`), their
# unit tests (`promtool test rules`), the dev profile's Prometheus configuration, and the
# Grafana dashboard (it is what scripts/grafana-dashboard.py writes, it parses, every panel
# has queries on the provisioned data source). That every metric a rule or panel names is
# served, and that the alerts fire in a real Prometheus, is tested by the HTTP suite
# (crates/auth-http/tests/api/prometheus.rs). promtool comes with Debian's `prometheus`
# package, installed here when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v promtool >/dev/null; then
    echo "==> apt-get install prometheus (for promtool)"
    sudo_if_needed=""
    [ "$(id -u)" -eq 0 ] || sudo_if_needed="sudo"
    $sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null \
        || { $sudo_if_needed apt-get update -q >/dev/null && $sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
fi
# Debian's package starts a server where an init system runs; the checks need only promtool.

promtool check rules deploy/prometheus/auth-rules.yml
(cd deploy/prometheus && promtool test rules tests/auth-rules.test.yml)
promtool check config deploy/prometheus/prometheus.yml

python3 - <<'PY'
import json, subprocess, sys, tempfile, pathlib
path = pathlib.Path("deploy/grafana/auth-service.json")
committed = path.read_text()
dash = json.loads(committed)
problems = []
ids = set()
for panel in dash["panels"]:
    if panel["id"] in ids:
        problems.append(f"panel id {panel['id']} twice")
    ids.add(panel["id"])
    if panel["type"] == "row":
        continue
    if panel.get("datasource", {}).get("uid") != "prometheus":
        problems.append(f"{panel['title']}: not on the provisioned data source (uid prometheus)")
    if not panel.get("targets") or not all(t.get("expr") for t in panel["targets"]):
        problems.append(f"{panel['title']}: a target without a query")
provisioned = pathlib.Path("deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
if "uid: prometheus" not in provisioned:
    problems.append("the provisioned data source is not uid prometheus")
regenerated = subprocess.run([sys.executable, "scripts/grafana-dashboard.py", "--stdout"],
                             capture_output=True, text=True, check=True).stdout
if regenerated != committed:
    problems.append("deploy/grafana/auth-service.json differs from what scripts/grafana-dashboard.py writes: run it")
for p in problems:
    print(f"FAIL  dashboard: {p}")
if problems:
    sys.exit(1)
panels = sum(1 for p in dash["panels"] if p["type"] != "row")
queries = sum(len(p.get("targets", [])) for p in dash["panels"])
print(f"ok    dashboard: {panels} panels, {queries} queries, provisioned data source")
PY
