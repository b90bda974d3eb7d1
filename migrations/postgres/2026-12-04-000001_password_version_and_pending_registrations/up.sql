-- Security review (issue 14): a password version for compare-and-set, and pending
-- registrations for taken emails. Same rules as migrations/sqlite (see there for why).

-- Goes up by one each time the password is set (change, reset). A login writes its session,
-- a rehash its hash and a change its password only while the version is the one it read
-- when it checked the password (UPDATE ... WHERE password_version = $n): under READ
-- COMMITTED the update waits for a reset holding the row and then sees its new version.
ALTER TABLE users ADD COLUMN password_version BIGINT NOT NULL DEFAULT 0;

-- Pending registrations for taken emails: the taken email's blind index and a 16-bit keyed
-- tag of the registration's password. NULL on every real account.
ALTER TABLE users ADD COLUMN pending_for_email_index BYTEA;
ALTER TABLE users ADD COLUMN pending_password_tag INTEGER;

CREATE INDEX users_pending_for ON users (pending_for_email_index, pending_password_tag)
    WHERE pending_for_email_index IS NOT NULL;
CREATE INDEX users_unverified_created_at ON users (created_at)
    WHERE email_verified_at IS NULL;
