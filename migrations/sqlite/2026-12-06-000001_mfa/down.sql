-- Reverts the second factors (their indexes go with them). Every account's TOTP,
-- recovery codes and passkeys are lost: logins no longer ask for a second factor.
DROP TABLE passkeys;
DROP TABLE recovery_codes;
DROP TABLE totp_authenticators;
