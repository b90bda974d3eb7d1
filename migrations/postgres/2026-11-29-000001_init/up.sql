-- Initial schema of the auth service on PostgreSQL: the same tables and rules as
-- migrations/sqlite, in PostgreSQL's own types.
--
-- Conventions:
-- * Ids are UUID v7 in the native UUID type (16 bytes, not 36 characters of text): v7 ids
--   sort by creation time, so primary key indexes stay append-mostly.
-- * Times are TIMESTAMPTZ: an absolute instant (stored as UTC microseconds), compared and
--   indexed natively, read back as chrono's DateTime<Utc> whatever the session time zone.
-- * Hashes, blind indexes and sealed values are BYTEA. Personal data is never stored in the
--   clear: `*_sealed` columns hold authenticated ciphertext (nonce included) that only the
--   service's keyring can open, so a stolen dump or backup leaks no email, phone, name or
--   IP address.
-- * Unique indexes have fixed names: the adapter tells which value was taken
--   (username or email) from the name of the violated constraint.
-- * PostgreSQL does not index foreign keys by itself: every referencing column has an
--   index, or each cascading delete would scan the whole child table.

CREATE TABLE users (
    id                   UUID        NOT NULL PRIMARY KEY,
    -- The username as typed, shown back to its owner and put in access tokens.
    username             TEXT        NOT NULL,
    -- Lower-cased username: uniqueness without regard to case is decided by the unique
    -- index below, inside the insert itself, so two concurrent registrations cannot both
    -- win (never by a read before the write).
    username_normalized  TEXT        NOT NULL,
    -- Blind index (keyed hash) of the normalized email instead of the plaintext: equal
    -- emails give equal indexes, so it serves look-up and uniqueness, yet without the key
    -- it cannot be reversed or matched against a list of known addresses.
    email_index          BYTEA       NOT NULL,
    email_sealed         BYTEA       NOT NULL,
    -- Blind index of the phone number: for look-up only. Not unique, since a number can be
    -- shared (a household, a company switchboard).
    phone_index          BYTEA,
    phone_sealed         BYTEA,
    name_sealed          BYTEA       NOT NULL,
    surname_sealed       BYTEA       NOT NULL,
    -- bcrypt over a keyed pre-hash of the password (never the password itself).
    password_hash        TEXT        NOT NULL,
    email_verified_at    TIMESTAMPTZ,
    -- A new email waiting for verification; it replaces email_* only once verified.
    pending_email_sealed BYTEA,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    last_login_at        TIMESTAMPTZ
);

-- Named so that a unique violation maps to Taken(Username) / Taken(Email).
CREATE UNIQUE INDEX users_username_normalized_key ON users (username_normalized);
CREATE UNIQUE INDEX users_email_index_key ON users (email_index);
CREATE INDEX users_phone_index ON users (phone_index);

-- A session is one refresh-token family on one device.
CREATE TABLE sessions (
    id           UUID        NOT NULL PRIMARY KEY,
    -- Deleting an account deletes its sessions in the same statement (and, through
    -- refresh_tokens below, their tokens): nothing of a deleted account stays usable.
    user_id      UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    -- Absolute end of the session: refreshing does not extend it.
    expires_at   TIMESTAMPTZ NOT NULL,
    user_agent   TEXT,
    -- Client IP of the login, sealed like any personal data.
    ip_sealed    BYTEA,
    -- Revocation is a mark, not a delete: a refresh token presented for a revoked session
    -- is recognised (and reported) instead of being merely unknown.
    revoked_at   TIMESTAMPTZ
);

-- Listing and revoking a user's sessions; also makes the cascade from users cheap.
CREATE INDEX sessions_user_id ON sessions (user_id);
-- Lets a fresh instance load the revocations since a point in time, and lets cleanup find
-- the sessions revoked long enough ago.
CREATE INDEX sessions_revoked_at ON sessions (revoked_at);
-- Lets cleanup find expired sessions without a full scan.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Refresh tokens are stored by SHA-256 hash only: the token carries 256 random bits, so a
-- plain hash cannot be reversed, and a leaked database holds no usable token. The hash is
-- the primary key because it is the only way a token is ever looked up.
--
-- Rotation is decided by a conditional update,
--     UPDATE refresh_tokens SET rotated_at = $now WHERE hash = $1 AND rotated_at IS NULL
-- whose affected-row count says whether this request won: a concurrent update of the same
-- row waits for the first one to commit, then re-checks `rotated_at IS NULL` on the new
-- row version and matches nothing. So of any number of concurrent requests presenting one
-- token exactly one wins (never a read followed by a write, which two requests could both
-- pass). Rotated rows are kept so that a reused token is detected as reuse (theft).
CREATE TABLE refresh_tokens (
    hash       BYTEA       NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    session_id UUID        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ
);

-- Makes the cascade from sessions cheap.
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Single-use tokens sent by mail (email verification, email change, password reset), by
-- hash only for the same reason as refresh tokens. They are consumed by a conditional
-- update (used_at IS NULL AND expires_at > now ... RETURNING), so a token works once,
-- even under races. `kind` is not constrained here: the adapter refuses unknown kinds
-- when it reads a row, and a new kind needs no migration.
CREATE TABLE one_time_tokens (
    hash        BYTEA       NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    kind        TEXT        NOT NULL,
    user_id     UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    -- A change-email link is bound to the address it was mailed to (its blind index): it
    -- confirms that address only, never another one made pending after it was sent.
    email_index BYTEA
);

-- Makes the cascade from users cheap.
CREATE INDEX one_time_tokens_user_id ON one_time_tokens (user_id);
-- Cleanup deletes expired tokens, and used ones: a partial index keeps only the latter,
-- which are few at any time.
CREATE INDEX one_time_tokens_expires_at ON one_time_tokens (expires_at);
CREATE INDEX one_time_tokens_used ON one_time_tokens (used_at) WHERE used_at IS NOT NULL;

-- "Not before" marks per user: after a password reset, "log out everywhere" or an account
-- deletion, every access token of the user issued before the mark is refused. The cache
-- holds them for fast checks; this table keeps them across restarts, and after the
-- account itself (and so its sessions) is deleted: hence no foreign key to users. A row is
-- useless once no token issued before it can be alive (expires_at), and cleanup deletes
-- it then.
CREATE TABLE user_revocations (
    user_id    UUID        NOT NULL PRIMARY KEY,
    not_before TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Lets cleanup and the start-up load find the marks still (or no longer) in force.
CREATE INDEX user_revocations_expires_at ON user_revocations (expires_at);
