-- Initial schema of the auth service on SQLite.
--
-- Conventions:
-- * Ids are UUID v7 in their canonical text form: v7 ids sort by creation time, so the
--   primary key index stays append-mostly.
-- * Timestamps are BIGINT unix milliseconds (UTC). Integers compare and index cheaply, and
--   the adapter converts them to and from chrono at its edge.
-- * Personal data is never stored in the clear. `*_sealed` columns hold authenticated
--   ciphertext (nonce included) that only the service's keyring can open; a stolen file or
--   backup leaks no email, phone, name or IP address.
-- * Every connection runs with `PRAGMA foreign_keys = ON` (SQLite defaults to OFF), so the
--   ON DELETE CASCADE clauses below really delete a user's sessions and tokens.

CREATE TABLE users (
    id                   TEXT    NOT NULL PRIMARY KEY,
    -- The username as typed, shown back to its owner and put in access tokens.
    username             TEXT    NOT NULL,
    -- Lower-cased username: uniqueness without regard to case is decided here, by the
    -- index, so two concurrent registrations cannot both win.
    username_normalized  TEXT    NOT NULL UNIQUE,
    -- Blind index (keyed hash) of the normalized email instead of the plaintext: equal
    -- emails give equal indexes, so it serves look-up and uniqueness, yet without the key
    -- it cannot be reversed or matched against a list of known addresses.
    email_index          BLOB    NOT NULL UNIQUE,
    email_sealed         BLOB    NOT NULL,
    -- Blind index of the phone number: for look-up only. Not unique, since a number can be
    -- shared (a household, a company switchboard).
    phone_index          BLOB,
    phone_sealed         BLOB,
    name_sealed          BLOB    NOT NULL,
    surname_sealed       BLOB    NOT NULL,
    -- bcrypt over a keyed pre-hash of the password (never the password itself).
    password_hash        TEXT    NOT NULL,
    email_verified_at    BIGINT,
    -- A new email waiting for verification; it replaces email_* only once verified.
    pending_email_sealed BLOB,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    last_login_at        BIGINT
);

CREATE INDEX users_phone_index ON users (phone_index);

-- A session is one refresh-token family on one device.
CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL,
    -- Absolute end of the session: refreshing does not extend it.
    expires_at   BIGINT  NOT NULL,
    user_agent   TEXT,
    -- Client IP of the login, sealed like any personal data.
    ip_sealed    BLOB,
    -- Revocation is a mark, not a delete: a refresh token presented for a revoked session
    -- is recognised (and reported) instead of being merely unknown.
    revoked_at   BIGINT
);

-- Listing and revoking a user's sessions; also makes the cascade from users cheap.
CREATE INDEX sessions_user_id ON sessions (user_id);
-- Lets a fresh instance load the revocations since a point in time.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);

-- Refresh tokens are stored by SHA-256 hash only: the token carries 256 random bits, so a
-- plain hash cannot be reversed, and a leaked database holds no usable token.
--
-- Rotation is decided by a conditional update,
--     UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL
-- whose affected-row count says whether this request won: of any number of concurrent
-- requests presenting one token exactly one sees 1, the others see 0 and are told the
-- token was already rotated (never a read followed by a write, which two requests could
-- both pass). Rotated rows are kept so that a reused token is detected as reuse (theft).
CREATE TABLE refresh_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    rotated_at BIGINT
);

-- Makes the cascade from sessions cheap (SQLite does not index foreign keys by itself).
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Single-use tokens sent by mail (email verification, email change, password reset), by
-- hash only for the same reason as refresh tokens. They are consumed by a conditional
-- update (used_at IS NULL AND expires_at > now), so a token works once, even under races.
CREATE TABLE one_time_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);

-- Makes the cascade from users cheap.
CREATE INDEX one_time_tokens_user_id ON one_time_tokens (user_id);
