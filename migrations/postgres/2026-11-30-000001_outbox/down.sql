-- Reverts the outbox (its indexes go with it). Queued mails are lost: drain the queue
-- first.
DROP TABLE outbox;
