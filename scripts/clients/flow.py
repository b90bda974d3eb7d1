"""The whole flow a client walks, through a client generated from the served /openapi.json
by openapi-python-client, used as its README shows: no casts, no dummy values. Run by
scripts/clients.sh with the generated package on PYTHONPATH."""

import base64
import hashlib
import hmac
import os
import re
import struct
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
from auth_service_client.api.mfa import (
    confirm_totp,
    disable_totp,
    enrol_totp,
    mfa_status,
    mfa_verify,
)
from auth_service_client.api.system import jwks
from auth_service_client.api.users import get_profile, list_sessions, update_profile
from auth_service_client.models import (
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    MfaMethodName,
    MfaRequiredResponse,
    MfaStatusResponse,
    MfaVerifyRequest,
    PasswordRequest,
    Problem,
    ProblemCode,
    ProfileResponse,
    ProfileUpdateRequest,
    ProfileUpdateResponse,
    RecoveryCodesResponse,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    SessionsResponse,
    TokenRequest,
    TokenResponse,
    TokenType,
    TotpConfirmRequest,
    TotpDisableRequest,
    TotpEnrolmentResponse,
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


def totp(secret: str, offset: int = 0) -> str:
    """RFC 6238: HMAC-SHA-1 over the 8-byte big-endian 30-second step, dynamic truncation, 6
    digits. `offset` picks a step relative to now (-1: the previous one)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + offset), hashlib.sha1).digest()
    at = mac[-1] & 0x0F
    return f"{(int.from_bytes(mac[at:at + 4], 'big') & 0x7FFFFFFF) % 1_000_000:06d}"


def mfa_login(client: Client, username: str, what: str) -> str:
    asked = login.sync(client=client, body=LoginRequest(username=username, password=PASSWORD))
    if not isinstance(asked, MfaRequiredResponse):
        raise SystemExit(f"python client: {what}: expected mfa_required, got {asked}")
    check(asked.mfa_required and MfaMethodName.TOTP in asked.methods, f"{what}: methods offer totp")
    return asked.mfa_token


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

    # The authenticator app (TOTP) as a second factor, with the password, then every way through it.
    plain = login.sync(client=client, body=LoginRequest(username=username, password=PASSWORD))
    if not isinstance(plain, LoginResponse):
        raise SystemExit(f"python client: login before TOTP: {plain}")
    mfa_user = AuthenticatedClient(base_url=BASE_URL, token=plain.access_token)
    enrolment = enrol_totp.sync(client=mfa_user, body=PasswordRequest(password=PASSWORD))
    if not isinstance(enrolment, TotpEnrolmentResponse):
        raise SystemExit(f"python client: enrol TOTP: {enrolment}")
    check(re.fullmatch(r"[A-Z2-7]+=*", enrolment.secret) is not None, "enrol TOTP: a base32 secret")
    check(enrolment.otpauth_url.startswith("otpauth://totp/"), "enrol TOTP: an otpauth:// URL")
    # The previous step's code (one step of drift is allowed), so that the current step's code
    # is still unused for the login below: a code works once.
    confirmed = confirm_totp.sync(
        client=mfa_user, body=TotpConfirmRequest(code=totp(enrolment.secret, -1))
    )
    if not isinstance(confirmed, RecoveryCodesResponse):
        raise SystemExit(f"python client: confirm TOTP: {confirmed}")
    recovery = confirmed.recovery_codes
    check(len(recovery) == 10, f"confirm TOTP: {len(recovery)} recovery codes")
    status = mfa_status.sync(client=mfa_user)
    check(
        isinstance(status, MfaStatusResponse) and status.totp and status.recovery_codes_left == 10,
        f"mfa status: totp, 10 codes left: {status}",
    )

    by_code = mfa_verify.sync(
        client=client,
        body=MfaVerifyRequest(
            mfa_token=mfa_login(client, username, "login with TOTP"), code=totp(enrolment.secret)
        ),
    )
    if not isinstance(by_code, LoginResponse):
        raise SystemExit(f"python client: verify with a TOTP code: {by_code}")
    check(
        by_code.token_type == TokenType.BEARER and by_code.access_token != "",
        "verify with a TOTP code: tokens",
    )
    by_recovery = mfa_verify.sync_detailed(
        client=client,
        body=MfaVerifyRequest(
            mfa_token=mfa_login(client, username, "login with a recovery code"),
            recovery_code=recovery[0],
        ),
    )
    check(by_recovery.status_code == 200, f"verify with a recovery code: {by_recovery.status_code}")
    check(
        isinstance(by_recovery.parsed, LoginResponse) and by_recovery.parsed.user.username == username,
        "verify with a recovery code: the user",
    )
    reused = mfa_verify.sync_detailed(
        client=client,
        body=MfaVerifyRequest(
            mfa_token=mfa_login(client, username, "login with a used recovery code"),
            recovery_code=recovery[0],
        ),
    )
    check(reused.status_code == 401, f"a used recovery code: {reused.status_code}")
    check(
        isinstance(reused.parsed, Problem) and reused.parsed.code == ProblemCode.INVALID_MFA_CODE,
        f"a used recovery code: invalid_mfa_code: {reused.parsed}",
    )

    removed = disable_totp.sync_detailed(
        client=mfa_user, body=TotpDisableRequest(password=PASSWORD, code=recovery[1])
    )
    check(removed.status_code == 204, f"remove TOTP: {removed.status_code}")
    without = mfa_status.sync(client=mfa_user)
    check(
        isinstance(without, MfaStatusResponse) and not without.totp and without.recovery_codes_left == 0,
        f"mfa status: no factor left: {without}",
    )
    plain_again = login.sync(client=client, body=LoginRequest(username=username, password=PASSWORD))
    check(isinstance(plain_again, LoginResponse), f"login after TOTP: tokens: {plain_again}")

    keys = jwks.sync(client=client)
    check(keys is not None and isinstance(keys.keys, list), "jwks: keys")

    print("python client: the whole flow passed")


if __name__ == "__main__":
    main()
