ALTER TABLE one_time_tokens DROP COLUMN email_index;
DROP TABLE user_revocations;
