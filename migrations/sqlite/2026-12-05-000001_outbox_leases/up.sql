-- Which queued mails a worker holds. A claim sets it (and `due_at`) to the end of its
-- lease, and the worker renews both while it works; a sent, retried or released mail has
-- none. It tells a lease from a retry time, both being a `due_at` in the future: at start,
-- the one process that owns this file gives back every lease (its worker before a crash
-- is gone), without bringing retries forward; and a late renewal cannot undo a retry.
ALTER TABLE outbox ADD COLUMN leased_until BIGINT;
