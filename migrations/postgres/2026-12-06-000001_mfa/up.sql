-- Second factors (issue 19): the same tables and rules as migrations/sqlite (see there
-- for why each column is what it is), in PostgreSQL's own types. Every table references
-- users with ON DELETE CASCADE, so deleting an account deletes its second factors in the
-- same statement, as it does its sessions and tokens; each referencing column is indexed
-- (the cascade would otherwise scan the table).
--
-- Writes that replace recovery codes or remove a factor first lock the account's row
-- (SELECT ... FOR NO KEY UPDATE): two of them for one account run one after the other,
-- so two replacements cannot leave the union of their sets, and two removals racing for
-- the last factors cannot both keep the recovery codes.

-- At most one TOTP authenticator per account (the user id is the key): a new enrolment
-- replaces a pending one by an upsert that refuses a confirmed one (ON CONFLICT ... DO
-- UPDATE ... WHERE confirmed_at IS NULL: the row count decides).
CREATE TABLE totp_authenticators (
    user_id       UUID        NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The shared secret (raw bytes), sealed like personal data.
    secret_sealed BYTEA       NOT NULL,
    -- Enrolled (the secret handed out).
    created_at    TIMESTAMPTZ NOT NULL,
    -- Confirmed by a first code (from then on a login needs a second factor); NULL while
    -- pending. Confirming is conditional on the secret the caller checked the code against.
    confirmed_at  TIMESTAMPTZ
);

-- Recovery codes by keyed hash only (a blind index of the user and the normalized code).
-- A code is used by a conditional update (... AND used_at IS NULL) whose row count
-- decides: a concurrent update of the same row waits, then re-checks `used_at IS NULL` on
-- the new row version and matches nothing, so a code works once.
CREATE TABLE recovery_codes (
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    -- One code once per user; also finds a code, the user's set, and serves the cascade.
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (user_id, code_hash)
);

-- Passkeys (WebAuthn credentials): public keys only, with their signature counter.
CREATE TABLE passkeys (
    id            UUID        NOT NULL PRIMARY KEY,
    user_id       UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The authenticator's credential id, unique across accounts (the index below).
    credential_id BYTEA       NOT NULL,
    -- The name the user gave it, sealed like personal data.
    name_sealed   BYTEA       NOT NULL,
    -- The credential as the passkey port serializes it (public key, counter, flags).
    credential    TEXT        NOT NULL,
    -- The signature counter as of the last use (0: the authenticator keeps none), a u32;
    -- a sign-in stores its new counter only while it is still the one its assertion was
    -- checked against (compare-and-set).
    sign_count    BIGINT      NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ
);

-- Named so that a unique violation maps to Taken(Credential); decided inside the insert,
-- so two registrations of one credential cannot both win.
CREATE UNIQUE INDEX passkeys_credential_id_key ON passkeys (credential_id);
-- A user's passkeys, oldest first; also makes the cascade from users cheap.
CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);
