DROP INDEX users_unverified_created_at;
DROP INDEX users_pending_for;
-- Pending registrations would become ordinary unverified accounts: remove them first.
DELETE FROM users WHERE pending_for_email_index IS NOT NULL;
ALTER TABLE users DROP COLUMN pending_password_tag;
ALTER TABLE users DROP COLUMN pending_for_email_index;
ALTER TABLE users DROP COLUMN password_version;
