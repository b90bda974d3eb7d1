-- The durable mail outbox. A mail is written in the same transaction as the change that
-- causes it (a registration, a password reset...), so a committed change always has its
-- mail and a rolled-back one never does; a worker delivers it later, off the request path,
-- and retries when the mail server is down.
--
-- No foreign key to users: a mail about an account outlives the account (the notice that
-- it was deleted is written by the very transaction that deletes it).
CREATE TABLE outbox (
    -- UUID v7 text, like every other id: sorts by creation time.
    id          TEXT    NOT NULL PRIMARY KEY,
    -- MailKind::as_str. Not constrained here: the adapter refuses unknown kinds when it
    -- reads a row, and a new kind needs no migration.
    kind        TEXT    NOT NULL,
    -- Recipient, name and link (with its single-use token), sealed like any personal data.
    -- Erased (NULL) once the mail is dead: nothing personal is kept for a mail that will
    -- never be sent.
    payload     BLOB,
    created_at  BIGINT  NOT NULL,
    -- When it may be claimed next: at once when queued, `now + lease` while a worker holds
    -- it (so a worker that dies releases it when the lease ends), the retry time after a
    -- failed attempt.
    due_at      BIGINT  NOT NULL,
    -- Delivery attempts so far; a claim counts the attempt it starts.
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Given up on: never claimed again, kept (payload erased) for operators to see until
    -- cleanup deletes it after DEAD_MAIL_RETENTION.
    dead_at     BIGINT,
    -- A mail has its payload exactly as long as it is not dead.
    CHECK ((payload IS NULL) = (dead_at IS NOT NULL))
);

-- Claims take the queued mails due first (ties in id order: UUID v7, so as queued). A
-- partial index holds queued mails only, so it stays as small as the queue however many
-- dead mails are kept.
CREATE INDEX outbox_due_at ON outbox (due_at, id) WHERE dead_at IS NULL;
-- Cleanup deletes dead mails past their retention, and stats count them.
CREATE INDEX outbox_dead_at ON outbox (dead_at) WHERE dead_at IS NOT NULL;
