-- Security review (issue 14): a password version for compare-and-set, and pending
-- registrations for taken emails.

-- Goes up by one each time the password is set (change, reset). A login writes its session,
-- a rehash its hash and a change its password only while the version is the one it read
-- when it checked the password:
--     UPDATE users SET last_login_at = ? WHERE id = ? AND password_version = ?
-- so a login (or change) that races a reset never outlives it.
ALTER TABLE users ADD COLUMN password_version BIGINT NOT NULL DEFAULT 0;

-- A pending registration for a taken email is stored as an unverified account of its own
-- (its username reserved through the same unique index, its password hashed the same way)
-- whose email_index is unique to it; these two columns say which taken email it was made
-- for (a blind index) and a 16-bit keyed tag of its password, so that a login by that email
-- finds it without one bcrypt per candidate. NULL on every real account.
ALTER TABLE users ADD COLUMN pending_for_email_index BLOB;
ALTER TABLE users ADD COLUMN pending_password_tag INTEGER;

CREATE INDEX users_pending_for ON users (pending_for_email_index, pending_password_tag)
    WHERE pending_for_email_index IS NOT NULL;
-- Cleanup deletes accounts never verified once they expire.
CREATE INDEX users_unverified_created_at ON users (created_at)
    WHERE email_verified_at IS NULL;
