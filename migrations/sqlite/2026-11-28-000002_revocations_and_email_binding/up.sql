-- "Not before" marks per user: after a password reset, "log out everywhere" or an account
-- deletion, every access token of the user issued before the mark is refused. The cache
-- holds them for fast checks; this table keeps them across a restart of a single-instance
-- deployment, and after the account itself (and so its sessions) is deleted: hence no
-- foreign key to users. A row is useless once no token issued before it can be alive
-- (expires_at), and may then be deleted.
CREATE TABLE user_revocations (
    user_id     TEXT    PRIMARY KEY NOT NULL,
    not_before  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX user_revocations_expires_at ON user_revocations (expires_at);

-- A change-email link is bound to the address it was mailed to (its blind index): it
-- confirms that address only, never another one made pending after it was sent.
ALTER TABLE one_time_tokens ADD COLUMN email_index BLOB;
