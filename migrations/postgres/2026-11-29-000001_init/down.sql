-- Reverts the initial schema, children before parents.
DROP TABLE user_revocations;
DROP TABLE one_time_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
