"""The whole flow a client walks, through a client generated from the served /openapi.json
by openapi-python-client, used as its README shows: no casts, no dummy values. Run by
scripts/clients.sh with the generated package on PYTHONPATH."""

import os
import re
import time

from auth_service_client import AuthenticatedClient, Client
from auth_service_client.api.auth import (
    login,
    logout,
    refresh_token,
    register,
    verify_email,
    verify_token,
)
from auth_service_client.api.system import jwks
from auth_service_client.api.users import get_profile, list_sessions, update_profile
from auth_service_client.models import (
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    Problem,
    ProblemCode,
    ProfileResponse,
    ProfileUpdateRequest,
    ProfileUpdateResponse,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    SessionsResponse,
    TokenRequest,
    TokenResponse,
    TokenType,
    VerifyTokenResponse,
)

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000")
LOG_FILE = os.environ.get("LOG_FILE", "")
RUN = os.environ.get("RUN_ID", str(int(time.time())))
PASSWORD = "SecurePass123!"


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"python client: {what}")


def mailed(path: str) -> list[str]:
    with open(LOG_FILE, encoding="utf-8") as log:
        return re.findall(path + r"\?token=([A-Za-z0-9_-]+)", log.read())


def mailed_token(path: str, after: int) -> str:
    for _ in range(200):
        tokens = mailed(path)
        if len(tokens) > after:
            return tokens[-1]
        time.sleep(0.05)
    raise SystemExit(f"python client: no {path} link in {LOG_FILE}")


def main() -> None:
    client = Client(base_url=BASE_URL)
    email = f"py.{RUN}@example.com"
    username = f"py_{RUN}"

    seen = len(mailed("verify-email"))
    created = register.sync_detailed(
        client=client,
        body=RegisterRequest(
            email=email, username=username, password=PASSWORD, name="Test", surname="User"
        ),
    )
    check(created.status_code == 201, f"register: {created.status_code}")
    check(isinstance(created.parsed, RegisterResponse), "register: body")
    if isinstance(created.parsed, RegisterResponse):
        check(created.parsed.user.email == email, "register: the account's email")

    verified = verify_email.sync_detailed(
        client=client, body=TokenRequest(token=mailed_token("verify-email", seen))
    )
    check(verified.status_code == 200, f"verify-email: {verified.status_code}")

    signed_in = login.sync(client=client, body=LoginRequest(username=username, password=PASSWORD))
    if not isinstance(signed_in, LoginResponse):
        raise SystemExit(f"python client: login: {signed_in}")
    check(signed_in.token_type == TokenType.BEARER, "login: token_type")
    user = AuthenticatedClient(base_url=BASE_URL, token=signed_in.access_token)

    valid = verify_token.sync(client=user)
    check(isinstance(valid, VerifyTokenResponse) and valid.valid, "verify-token")

    # A phone, then a name-only update: the phone must stay.
    phone = update_profile.sync(client=user, body=ProfileUpdateRequest(phone_number="+15550100200"))
    check(isinstance(phone, ProfileUpdateResponse), f"profile (phone): {phone}")
    renamed = update_profile.sync(client=user, body=ProfileUpdateRequest(name="Renamed"))
    if not isinstance(renamed, ProfileUpdateResponse):
        raise SystemExit(f"python client: profile (name): {renamed}")
    check(renamed.user.name == "Renamed", "profile (name)")
    check(renamed.user.phone_number == "+15550100200", "a name-only update keeps the phone")
    profile = get_profile.sync(client=user)
    check(
        isinstance(profile, ProfileResponse) and profile.user.phone_number == "+15550100200",
        "the phone is still stored",
    )

    sessions = list_sessions.sync(client=user)
    check(isinstance(sessions, SessionsResponse) and sessions.total_count >= 1, "sessions")

    pair = refresh_token.sync(client=client, body=RefreshRequest(refresh_token=signed_in.refresh_token))
    if not isinstance(pair, TokenResponse):
        raise SystemExit(f"python client: refresh: {pair}")
    after = AuthenticatedClient(base_url=BASE_URL, token=pair.access_token)

    # Logout without a body ends this session; with all=True, every session.
    out = logout.sync_detailed(client=after)
    check(out.status_code == 204, f"logout without a body: {out.status_code}")
    again = login.sync(client=client, body=LoginRequest(email=email, password=PASSWORD))
    if not isinstance(again, LoginResponse):
        raise SystemExit(f"python client: login by email: {again}")
    second = AuthenticatedClient(base_url=BASE_URL, token=again.access_token)
    out_all = logout.sync_detailed(client=second, body=LogoutRequest(all_=True))
    check(out_all.status_code == 204, f"logout all: {out_all.status_code}")

    # Problems, typed.
    bad = register.sync(
        client=client,
        body=RegisterRequest(
            email="not-an-email", username=username, password=PASSWORD, name="Test", surname="User"
        ),
    )
    if not isinstance(bad, Problem):
        raise SystemExit(f"python client: expected a problem, got {bad}")
    check(bad.code == ProblemCode.VALIDATION_FAILED and bad.status == 400, "400 validation_failed")
    refused = get_profile.sync_detailed(client=AuthenticatedClient(base_url=BASE_URL, token="not-a-token"))
    check(refused.status_code == 401, f"401: {refused.status_code}")
    check(
        isinstance(refused.parsed, Problem) and refused.parsed.code == ProblemCode.INVALID_TOKEN,
        "401 invalid_token",
    )
    check(refused.headers.get("www-authenticate", "").startswith("Bearer"), "401: WWW-Authenticate")

    keys = jwks.sync(client=client)
    check(keys is not None and isinstance(keys.keys, list), "jwks: keys")

    print("python client: the whole flow passed")


if __name__ == "__main__":
    main()
