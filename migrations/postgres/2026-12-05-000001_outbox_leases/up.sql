-- Which queued mails a worker holds: the same column as in migrations/sqlite. A claim sets
-- it (and `due_at`) to the end of its lease, and the worker renews both while it works; a
-- sent, retried or released mail has none. It tells a lease from a retry time, both being
-- a `due_at` in the future, so that a renewal that comes late cannot undo a retry.
ALTER TABLE outbox ADD COLUMN leased_until TIMESTAMPTZ;
