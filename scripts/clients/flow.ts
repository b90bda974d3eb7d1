// The whole flow a web client walks, through a client generated from the served
// /openapi.json (openapi-typescript + openapi-fetch), with no casts: if the document and the
// service disagree, this fails to type-check or fails at run time. Run by scripts/clients.sh.
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

const keys = await client.GET("/.well-known/jwks.json");
check(Array.isArray(keys.data?.keys), "jwks: keys");

console.log("typescript client: the whole flow passed");
