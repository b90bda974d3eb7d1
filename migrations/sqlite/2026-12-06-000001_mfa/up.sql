-- Second factors (issue 19): a TOTP authenticator, single-use recovery codes and passkeys
-- per account. Every table references users with ON DELETE CASCADE (foreign keys are on
-- for every connection), so deleting an account deletes its second factors in the same
-- statement, as it does its sessions and tokens.

-- At most one TOTP authenticator per account: the user id is the primary key, so a new
-- enrolment replaces a pending one by an upsert that refuses a confirmed one,
--     INSERT ... ON CONFLICT (user_id) DO UPDATE SET ... WHERE confirmed_at IS NULL
-- whose row count says whether it took effect.
CREATE TABLE totp_authenticators (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The shared secret (raw bytes), sealed like personal data: a stolen file or backup
    -- gives no one the codes.
    secret_sealed BLOB    NOT NULL,
    -- Enrolled (the secret handed out).
    created_at    BIGINT  NOT NULL,
    -- Confirmed by a first code: from then on a login needs a second factor. NULL while
    -- pending. Confirming is conditional on the secret the caller checked the code
    -- against (UPDATE ... WHERE secret_sealed = ? AND confirmed_at IS NULL).
    confirmed_at  BIGINT
);

-- Recovery codes by keyed hash only (a blind index of the user and the normalized code):
-- a leaked file holds no usable code. A code is used by a conditional update,
--     UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ?
--                                             AND used_at IS NULL
-- whose row count decides, so a code works once, even under races. Used codes are kept
-- until the set is replaced; a new set replaces every code of the user.
CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL,
    created_at BIGINT  NOT NULL,
    used_at    BIGINT,
    -- One code once per user; also the index that finds a code and the user's set (and
    -- makes the cascade from users cheap).
    PRIMARY KEY (user_id, code_hash)
);

-- Passkeys (WebAuthn credentials): public keys only, with their signature counter.
CREATE TABLE passkeys (
    -- UUID v7 text, like every other id.
    id            TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The authenticator's credential id: unique across accounts, decided by this index
    -- inside the insert (two registrations of one credential cannot both win). A sign-in
    -- finds its passkey by it.
    credential_id BLOB    NOT NULL UNIQUE,
    -- The name the user gave it, sealed like personal data.
    name_sealed   BLOB    NOT NULL,
    -- The credential as the passkey port serializes it (public key, counter, flags).
    credential    TEXT    NOT NULL,
    -- The signature counter as of the last use (0: the authenticator keeps none). A u32:
    -- BIGINT holds all of it. A sign-in stores its new counter only while the counter is
    -- still the one its assertion was checked against (compare-and-set), so of two
    -- sign-ins with a cloned authenticator one loses.
    sign_count    BIGINT  NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT
);

-- A user's passkeys, oldest first; also makes the cascade from users cheap.
CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);
