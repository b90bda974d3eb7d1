#!/usr/bin/env python3
"""Passkeys in a real browser: headless Chromium with a CDP virtual authenticator.

Starts the service (the debug binary `cargo test` built, or AUTH_BIN) with its page origin
as WEBAUTHN_ORIGIN, serves scripts/browser-passkeys/page.html from that origin, and drives
Chromium over the DevTools protocol (`--remote-debugging-pipe`: no WebSocket library, the
standard library only). The virtual authenticator is what `WebAuthn.addVirtualAuthenticator`
makes: CTAP2, internal transport, resident keys, user verification. The page calls
`navigator.credentials` with the browser's own JSON helpers, as a frontend does.

Flows, each checked on the service's answers:
  1. a signed-in user registers a passkey (password first) -> 201, listed by GET /users/mfa,
     the user mailed;
  2. passwordless sign-in with the discoverable passkey -> 200, a working access token;
  3. an old assertion presented to a new challenge, and to its own used challenge -> refused;
  4. a password login now asks for a second factor (methods: passkey) and the passkey
     completes it -> 200;
  5. a clone of the authenticator whose signature counter is behind -> refused;
  6. the passkey removed -> the password alone signs in again.

Env: AUTH_BIN (default target/debug/auth-http, built when missing), CHROMIUM (default
`chromium`). Exit status 0 when every check passed.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_DIR = Path(__file__).resolve().parent / "browser-passkeys"
PASSWORD = "SecurePass123!"


def log(text):
    print(f"browser-passkeys: {text}", flush=True)


def fail(text):
    print(f"browser-passkeys: FAILED: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(condition, what, detail=None):
    if not condition:
        fail(f"{what}" + (f": {json.dumps(detail)[:2000]}" if detail is not None else ""))
    log(f"ok: {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            raw = res.read()
            return res.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, (json.loads(raw) if raw else None)


class Cdp:
    """The DevTools protocol over Chromium's debugging pipe: JSON messages ended by NUL,
    commands written to the browser's fd 3, answers and events read from its fd 4."""

    def __init__(self, chromium, user_data_dir):
        Path(user_data_dir).mkdir(parents=True, exist_ok=True)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
                f"--user-data-dir={user_data_dir}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(user_data_dir) / "chromium.log", "wb"),
            preexec_fn=child_fds,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next = 0
        self._answers = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                with self._cond:
                    self._answers["closed"] = True
                    self._cond.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                decoded = json.loads(message)
                if "id" in decoded:
                    with self._cond:
                        self._answers[decoded["id"]] = decoded
                        self._cond.notify_all()

    def send(self, method, params=None, session=None, timeout=60):
        self._next += 1
        ident = self._next
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._answers:
                if self._answers.get("closed"):
                    fail(f"chromium exited during {method}")
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"no answer to {method} in {timeout} s")
                self._cond.wait(left)
            answer = self._answers.pop(ident)
        if "error" in answer:
            fail(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Page:
    """One tab of the browser, attached with a flat session."""

    def __init__(self, cdp):
        self.cdp = cdp
        targets = cdp.send("Target.getTargets")["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        if page is None:
            page = {"targetId": cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]}
        self.session = cdp.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]

    def send(self, method, params=None, timeout=60):
        return self.cdp.send(method, params, self.session, timeout)

    def evaluate(self, expression, timeout=60):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout,
        )
        if "exceptionDetails" in result:
            fail(f"page script failed: {expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def call(self, function, *args):
        return self.evaluate(f"window.flows.{function}({', '.join(json.dumps(a) for a in args)})")


def authenticator(page):
    return page.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]


def service_binary():
    explicit = os.environ.get("AUTH_BIN")
    if explicit:
        return explicit
    binary = ROOT / "target" / "debug" / "auth-http"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "auth-http"], cwd=ROOT, check=True)
    return str(binary)


def mailed_token(log_file, path, after):
    for _ in range(200):
        tokens = re.findall(path + r"\?token=([A-Za-z0-9_-]+)", Path(log_file).read_text())
        if len(tokens) > after:
            return tokens[-1]
        time.sleep(0.05)
    fail(f"no {path} link in the service log")


def main():
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        fail("chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    work = Path(tempfile.mkdtemp(prefix="auth-browser-passkeys-"))
    api_port, page_port = free_port(), free_port()
    origin = f"http://localhost:{page_port}"
    api = f"http://127.0.0.1:{api_port}"
    service_log = work / "service.log"
    env = dict(
        os.environ,
        AUTH_DATA_DIR=str(work / "data"),
        HOST="127.0.0.1",
        PORT=str(api_port),
        BCRYPT_COST="4",
        LOG_FORMAT="text",
        RUST_LOG="warn,auth_mail=info",
        APP_URL=origin,
        CORS_ORIGINS=origin,
    )
    # WEBAUTHN_RP_ID and WEBAUTHN_ORIGIN are left to their defaults: `localhost` and the
    # origin of APP_URL.
    service = subprocess.Popen(
        [service_binary(), "serve"], env=env, stdout=open(service_log, "wb"), stderr=subprocess.STDOUT
    )
    pages = ThreadingHTTPServer(
        ("127.0.0.1", page_port), partial(QuietHandler, directory=str(PAGE_DIR))
    )
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    cdp = None
    try:
        for _ in range(400):
            try:
                if http("GET", f"{api}/health/live")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            fail(f"the service did not start: {service_log.read_text()[-2000:]}")
        cdp = Cdp(chromium, work / "chromium")
        run(cdp, api, origin, service_log)
        log("every check passed")
    finally:
        if cdp is not None:
            cdp.close()
        pages.shutdown()
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
        shutil.rmtree(work, ignore_errors=True)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def run(cdp, api, origin, service_log):
    # An account, verified, signed in with its password.
    username, email = "passkey_user", "passkey.user@example.com"
    seen = len(re.findall(r"verify-email\?token=", service_log.read_text()))
    status, body = http("POST", f"{api}/auth/register", {
        "email": email, "username": username, "password": PASSWORD, "name": "Pass", "surname": "Key",
    })
    check(status == 201, "register", body)
    token = mailed_token(service_log, "verify-email", seen)
    check(http("POST", f"{api}/auth/verify-email", {"token": token})[0] == 200, "verify email")
    status, body = http("POST", f"{api}/auth/login", {"username": username, "password": PASSWORD})
    check(status == 200 and "access_token" in body, "password login before any passkey", body)
    access = body["access_token"]

    page = Page(cdp)
    page.send("Page.enable")
    page.send("Emulation.setFocusEmulationEnabled", {"enabled": True})
    page.send("WebAuthn.enable", {"enableUI": False})
    laptop = authenticator(page)
    page.send("Page.navigate", {"url": f"{origin}/page.html?api={api}"})
    for _ in range(200):
        if page.evaluate("document.getElementById('status')?.textContent ?? ''") == "loaded":
            break
        time.sleep(0.05)
    else:
        fail("the page did not load")

    # 1. Register.
    result = page.call("register", access, PASSWORD, "Test laptop")
    check(result["status"] == 201, "register a passkey: 201", result)
    options = result["options"]
    check(options["rp"]["id"] == "localhost", "the relying party id defaults to the host of APP_URL", options["rp"])
    check(options["authenticatorSelection"]["residentKey"] == "required", "a discoverable credential is asked for")
    check(options["authenticatorSelection"]["userVerification"] == "required", "user verification is required")
    passkey_id = result["body"]["id"]
    check(result["body"]["name"] == "Test laptop", "the passkey keeps its name", result["body"])
    stored = page.send("WebAuthn.getCredentials", {"authenticatorId": laptop})["credentials"]
    check(len(stored) == 1 and stored[0]["isResidentCredential"], "the authenticator holds one resident credential", stored)
    status, mfa = http("GET", f"{api}/users/mfa", token=access)
    check(status == 200 and [p["id"] for p in mfa["passkeys"]] == [passkey_id], "GET /users/mfa lists it", mfa)
    # Registering the same authenticator again is refused by the browser (excludeCredentials).
    again = page.evaluate(
        f"window.flows.register({json.dumps(access)}, {json.dumps(PASSWORD)}, 'again')"
        ".then(r => r, e => ({error: e.name}))"
    )
    check(again.get("error") == "InvalidStateError", "the same authenticator cannot register twice", again)

    # 2. Passwordless.
    result = page.call("passwordless")
    check(result["status"] == 200 and "access_token" in result["body"], "passwordless sign-in: 200 with tokens", result)
    check(result["options"].get("allowCredentials", []) == [], "passwordless asks for a discoverable credential", result["options"])
    check(result["body"]["user"]["username"] == username, "passwordless signs in as the passkey's owner")
    status, valid = http("GET", f"{api}/auth/verify-token", token=result["body"]["access_token"])
    check(status == 200 and valid["valid"], "the passwordless access token verifies", valid)
    old = result["credential"]

    # 3. Replays.
    replay = page.call("replay", old)
    check(replay["status"] == 401, "an old assertion on a new challenge is refused", replay)
    again = page.call("finishAgain", result["challenge_id"], old)
    check(again["status"] == 401 and again["body"]["code"] == "invalid_token", "a used challenge is refused", again)

    # 4. Second factor of a password login.
    result = page.call("secondFactor", username, PASSWORD)
    check(result["step"] == "finish", "a password login asks for a second factor", result)
    check(result["login"]["methods"] == ["passkey"], "methods: passkey", result["login"])
    check("access_token" not in result["login"], "no token before the second factor", result["login"])
    check(len(result["options"].get("allowCredentials", [])) == 1, "the second factor allows the account's passkey", result["options"])
    check(result["status"] == 200 and "access_token" in result["body"], "the passkey completes the login: 200", result)
    status, mfa = http("GET", f"{api}/users/mfa", token=result["body"]["access_token"])
    check(mfa["passkeys"][0]["last_used_at"] is not None, "last_used_at is recorded", mfa)

    # 5. A cloned authenticator whose signature counter is behind.
    credential = page.send("WebAuthn.getCredentials", {"authenticatorId": laptop})["credentials"][0]
    check(credential["signCount"] >= 2, "the authenticator counts signatures", credential)
    page.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": laptop})
    clone = authenticator(page)
    page.send("WebAuthn.addCredential", {"authenticatorId": clone, "credential": dict(credential, signCount=0)})
    result = page.call("passwordless")
    check(result["status"] == 401, "a signature counter that went backwards is refused", result)
    page.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": clone})
    ahead = authenticator(page)
    page.send("WebAuthn.addCredential", {"authenticatorId": ahead, "credential": dict(credential, signCount=credential["signCount"] + 10)})
    result = page.call("passwordless")
    check(result["status"] == 200, "the genuine authenticator (counter ahead) still signs in", result)

    # 6. Removal.
    token = result["body"]["access_token"]
    status, _ = http("DELETE", f"{api}/users/passkeys/{passkey_id}", token=token)
    check(status == 204, "remove the passkey: 204")
    status, body = http("POST", f"{api}/auth/login", {"username": username, "password": PASSWORD})
    check(status == 200 and "access_token" in body, "without a passkey the password alone signs in again", body)
    result = page.call("passwordless")
    check(result["status"] == 401, "the removed passkey no longer signs in", result)
    mails = service_log.read_text()
    check("passkey_added" in mails and "passkey_removed" in mails, "the owner was mailed when the passkey was added and removed")


if __name__ == "__main__":
    main()
