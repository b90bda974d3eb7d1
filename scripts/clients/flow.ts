// The whole flow a web client walks, through a client generated from the served
// /openapi.json (openapi-typescript + openapi-fetch), with no casts: if the document and the
// service disagree, this fails to type-check or fails at run time. Run by scripts/clients.sh.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Problem"];

const baseUrl = process.env.BASE_URL ?? "http://127.0.0.1:5000";
const logFile = process.env.LOG_FILE ?? "";
const run = process.env.RUN_ID ?? String(Date.now());
const client = createClient<paths>({ baseUrl });

function check(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`typescript client: ${what}`);
  }
}

async function mailedToken(path: string, after: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const tokens = [...readFileSync(logFile, "utf8").matchAll(new RegExp(`${path}\\?token=([A-Za-z0-9_-]+)`, "g"))];
    const last = tokens[tokens.length - 1];
    if (tokens.length > after && last?.[1]) {
      return last[1];
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${path} link in ${logFile}`);
}

function mailedSoFar(path: string): number {
  return [...readFileSync(logFile, "utf8").matchAll(new RegExp(`${path}\\?token=`, "g"))].length;
}

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) {
    throw new Error(`typescript client: ${what}`);
  }
  return value;
}

function problem(error: Problem | undefined, code: Problem["code"], status: number): Problem {
  const p = must(error, `expected a ${code} problem`);
  check(p.code === code && p.status === status, `expected ${status} ${code}, got ${p.status} ${p.code}`);
  return p;
}

// RFC 6238 with node's crypto: HMAC-SHA-1 over the 8-byte big-endian 30-second step, dynamic
// truncation, 6 digits. `offset` picks a step relative to now (-1: the previous one).
function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    const index = alphabet.indexOf(c);
    if (index < 0) throw new Error(`typescript client: not base32: ${c}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp(secret: string, offset = 0): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const at = must(mac[mac.length - 1], "an HMAC-SHA-1 digest") & 0x0f;
  return String(mac.readUInt32BE(at) & 0x7fffffff).padStart(6, "0").slice(-6);
}

const email = `ts.${run}@example.com`;
const username = `ts_${run}`;
const password = "SecurePass123!";

// The quick start's registration body, as the generated type asks for it.
const seen = mailedSoFar("verify-email");
const registered = await client.POST("/auth/register", {
  body: { email, username, password, name: "Test", surname: "User" },
});
check(registered.response.status === 201, `register: ${registered.response.status}`);
check(registered.data?.user.email === email, "register: the account's email");

const verified = await client.POST("/auth/verify-email", {
  body: { token: await mailedToken("verify-email", seen) },
});
check(verified.response.status === 200, `verify-email: ${verified.response.status}`);

const login = await client.POST("/auth/login", { body: { username, password } });
const answer = must(login.data, `login: ${login.response.status}`);
// An account with a second factor gets `mfa_required` instead: not this one.
if (!("access_token" in answer)) throw new Error("login: a second factor was asked for");
const tokens = answer;
check(tokens.token_type === "Bearer", "login: token_type");
const bearer = { Authorization: `Bearer ${tokens.access_token}` };

const valid = await client.GET("/auth/verify-token", { headers: bearer });
check(valid.data?.valid === true && valid.data.username === username, "verify-token");

// A phone, then a name-only update: the phone must stay.
const phoneSet = await client.PUT("/users/profile", {
  headers: bearer,
  body: { phone_number: "+15550100200" },
});
check(phoneSet.response.status === 200, `profile (phone): ${phoneSet.response.status}`);
const renamed = await client.PUT("/users/profile", { headers: bearer, body: { name: "Renamed" } });
check(renamed.data?.user.name === "Renamed", "profile (name)");
check(renamed.data?.user.phone_number === "+15550100200", "a name-only update keeps the phone");
const profile = await client.GET("/users/profile", { headers: bearer });
check(profile.data?.user.phone_number === "+15550100200", "the phone is still stored");

const sessions = await client.GET("/users/sessions", { headers: bearer });
check((sessions.data?.total_count ?? 0) >= 1, "sessions");
check(sessions.data?.active_sessions.some((s) => s.current) === true, "sessions: current");

const refreshed = await client.POST("/auth/refresh-token", {
  body: { refresh_token: tokens.refresh_token },
});
const pair = must(refreshed.data, `refresh: ${refreshed.response.status}`);
const after = { Authorization: `Bearer ${pair.access_token}` };

// Logout without a body ends this session; with {all: true}, every session.
const out = await client.POST("/auth/logout", { headers: after });
check(out.response.status === 204, `logout without a body: ${out.response.status}`);
const again = await client.POST("/auth/login", { body: { email, password } });
const secondAnswer = must(again.data, `login by email: ${again.response.status}`);
if (!("access_token" in secondAnswer)) throw new Error("login by email: a second factor was asked for");
const second = secondAnswer;
const outAll = await client.POST("/auth/logout", {
  headers: { Authorization: `Bearer ${second.access_token}` },
  body: { all: true },
});
check(outAll.response.status === 204, `logout {all: true}: ${outAll.response.status}`);

// Problems, typed.
const bad = await client.POST("/auth/register", {
  body: { email: "not-an-email", username, password, name: "Test", surname: "User" },
});
const invalid = problem(bad.error, "validation_failed", 400);
check((invalid.errors?.["email"]?.length ?? 0) > 0, "400: errors names the email");
const refused = await client.GET("/users/profile", { headers: { Authorization: "Bearer not-a-token" } });
problem(refused.error, "invalid_token", 401);
check(
  refused.response.headers.get("www-authenticate")?.startsWith("Bearer") === true,
  "401: WWW-Authenticate",
);

// The authenticator app (TOTP) as a second factor, with the password, then every way through it.
const plain = await client.POST("/auth/login", { body: { username, password } });
const plainAnswer = must(plain.data, `login before TOTP: ${plain.response.status}`);
if (!("access_token" in plainAnswer)) throw new Error("login before TOTP: a second factor was asked for");
const mfaBearer = { Authorization: `Bearer ${plainAnswer.access_token}` };
const enrolled = await client.POST("/users/mfa/totp", { headers: mfaBearer, body: { password } });
const enrolment = must(enrolled.data, `enrol TOTP: ${enrolled.response.status}`);
check(/^[A-Z2-7]+=*$/.test(enrolment.secret), "enrol TOTP: a base32 secret");
check(enrolment.otpauth_url.startsWith("otpauth://totp/"), "enrol TOTP: an otpauth:// URL");
// The previous step's code (one step of drift is allowed), so that the current step's code
// is still unused for the login below: a code works once.
const confirmed = await client.POST("/users/mfa/totp/confirm", {
  headers: mfaBearer,
  body: { code: totp(enrolment.secret, -1) },
});
const recovery = must(confirmed.data, `confirm TOTP: ${confirmed.response.status}`).recovery_codes;
check(recovery.length === 10, `confirm TOTP: ${recovery.length} recovery codes`);
const status = await client.GET("/users/mfa", { headers: mfaBearer });
check(
  status.data?.totp === true && status.data.recovery_codes_left === 10,
  "mfa status: totp, 10 codes left",
);

async function mfaLogin(what: string): Promise<string> {
  const asked = await client.POST("/auth/login", { body: { username, password } });
  const answer = must(asked.data, `${what}: login: ${asked.response.status}`);
  if (!("mfa_token" in answer)) {
    throw new Error(`typescript client: ${what}: no second factor was asked for`);
  }
  check(answer.mfa_required && answer.methods.includes("totp"), `${what}: methods offer totp`);
  check(!("access_token" in answer), `${what}: no tokens before the second factor`);
  return answer.mfa_token;
}

const byCode = await client.POST("/auth/mfa/verify", {
  body: { mfa_token: await mfaLogin("login with TOTP"), code: totp(enrolment.secret) },
});
const viaCode = must(byCode.data, `verify with a TOTP code: ${byCode.response.status}`);
check(
  viaCode.token_type === "Bearer" && viaCode.access_token.length > 0,
  "verify with a TOTP code: tokens",
);
const recoveryCode = must(recovery[0], "a recovery code");
const byRecovery = await client.POST("/auth/mfa/verify", {
  body: { mfa_token: await mfaLogin("login with a recovery code"), recovery_code: recoveryCode },
});
check(byRecovery.response.status === 200, `verify with a recovery code: ${byRecovery.response.status}`);
check(byRecovery.data?.user.username === username, "verify with a recovery code: the user");
const reused = await client.POST("/auth/mfa/verify", {
  body: { mfa_token: await mfaLogin("login with a used recovery code"), recovery_code: recoveryCode },
});
problem(reused.error, "invalid_mfa_code", 401);

const removed = await client.DELETE("/users/mfa/totp", {
  headers: mfaBearer,
  body: { password, code: must(recovery[1], "a second recovery code") },
});
check(removed.response.status === 204, `remove TOTP: ${removed.response.status}`);
const without = await client.GET("/users/mfa", { headers: mfaBearer });
check(
  without.data?.totp === false && without.data.recovery_codes_left === 0,
  "mfa status: no factor left",
);
const plainAgain = await client.POST("/auth/login", { body: { username, password } });
const againAnswer = must(plainAgain.data, `login after TOTP: ${plainAgain.response.status}`);
check("access_token" in againAnswer, "login after TOTP: tokens without a second factor");

const keys = await client.GET("/.well-known/jwks.json");
check(Array.isArray(keys.data?.keys), "jwks: keys");

console.log("typescript client: the whole flow passed");
