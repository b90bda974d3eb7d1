//! The part of [`rows!`](crate::rows) for second factors: TOTP authenticators, recovery
//! codes and passkeys.

/// Generates `TotpRow`, `RecoveryCodeRow` (with `recovery_code_rows`, a new set of codes)
/// and `PasskeyRow`, and their conversions. Called by [`rows!`](crate::rows) only; same
/// arguments. The tables `totp_authenticators`, `recovery_codes` and `passkeys` must be in
/// scope.
#[doc(hidden)]
#[macro_export]
macro_rules! __mfa_rows {
    (
        backend: $backend:path,
        columns: $cols:ty,
        id: $id:ty,
        time: $time:ty,
        dialect: $dialect:literal $(,)?
    ) => {
        /// A row of `totp_authenticators`.
        #[derive(Debug, Queryable, Selectable, Insertable)]
        #[diesel(table_name = totp_authenticators, check_for_backend($backend))]
        pub(crate) struct TotpRow {
            pub user_id: $id,
            pub secret_sealed: Vec<u8>,
            pub created_at: $time,
            pub confirmed_at: Option<$time>,
        }

        impl TotpRow {
            pub(crate) fn from_record(totp: &auth_domain::model::TotpRecord) -> Self {
                Self {
                    user_id: <$cols>::id(totp.user_id.0),
                    secret_sealed: totp.secret_sealed.0.clone(),
                    created_at: <$cols>::time(totp.created_at),
                    confirmed_at: totp.confirmed_at.map(<$cols>::time),
                }
            }

            pub(crate) fn into_record(
                self,
            ) -> Result<auth_domain::model::TotpRecord, auth_domain::ports::PortError> {
                const T: &str = "totp_authenticators";
                Ok(auth_domain::model::TotpRecord {
                    user_id: auth_domain::types::UserId(<$cols>::read_id(T, self.user_id)?),
                    secret_sealed: auth_domain::types::Sealed(self.secret_sealed),
                    created_at: <$cols>::read_time(T, self.created_at)?,
                    confirmed_at: <$cols>::read_opt_time(T, self.confirmed_at)?,
                })
            }
        }

        /// A new row of `recovery_codes` (unused).
        #[derive(Debug, Insertable)]
        #[diesel(table_name = recovery_codes, check_for_backend($backend))]
        pub(crate) struct RecoveryCodeRow {
            pub user_id: $id,
            pub code_hash: Vec<u8>,
            pub created_at: $time,
        }

        /// The rows of a new set of recovery codes of `user`, created at `now`; a code given
        /// twice is stored once.
        pub(crate) fn recovery_code_rows(
            user: auth_domain::types::UserId,
            codes: &[auth_domain::model::RecoveryCodeHash],
            now: auth_domain::types::Timestamp,
        ) -> Vec<RecoveryCodeRow> {
            let mut rows: Vec<RecoveryCodeRow> = Vec::with_capacity(codes.len());
            for code in codes {
                if rows.iter().any(|row| row.code_hash == code.0.0) {
                    continue;
                }
                rows.push(RecoveryCodeRow {
                    user_id: <$cols>::id(user.0),
                    code_hash: code.0.0.clone(),
                    created_at: <$cols>::time(now),
                });
            }
            rows
        }

        /// A row of `passkeys`.
        #[derive(Debug, Queryable, Selectable, Insertable)]
        #[diesel(table_name = passkeys, check_for_backend($backend))]
        pub(crate) struct PasskeyRow {
            pub id: $id,
            pub user_id: $id,
            pub credential_id: Vec<u8>,
            pub name_sealed: Vec<u8>,
            pub credential: String,
            pub sign_count: i64,
            pub created_at: $time,
            pub last_used_at: Option<$time>,
        }

        impl PasskeyRow {
            pub(crate) fn from_record(passkey: &auth_domain::model::PasskeyRecord) -> Self {
                Self {
                    id: <$cols>::id(passkey.id.0),
                    user_id: <$cols>::id(passkey.user_id.0),
                    credential_id: passkey.credential_id.clone(),
                    name_sealed: passkey.name_sealed.0.clone(),
                    credential: passkey.credential.clone(),
                    sign_count: i64::from(passkey.sign_count),
                    created_at: <$cols>::time(passkey.created_at),
                    last_used_at: passkey.last_used_at.map(<$cols>::time),
                }
            }

            pub(crate) fn into_record(
                self,
            ) -> Result<auth_domain::model::PasskeyRecord, auth_domain::ports::PortError> {
                const T: &str = "passkeys";
                Ok(auth_domain::model::PasskeyRecord {
                    id: auth_domain::types::PasskeyId(<$cols>::read_id(T, self.id)?),
                    user_id: auth_domain::types::UserId(<$cols>::read_id(T, self.user_id)?),
                    credential_id: self.credential_id,
                    name_sealed: auth_domain::types::Sealed(self.name_sealed),
                    credential: self.credential,
                    sign_count: $crate::columns::read_sign_count(self.sign_count)?,
                    created_at: <$cols>::read_time(T, self.created_at)?,
                    last_used_at: <$cols>::read_opt_time(T, self.last_used_at)?,
                })
            }
        }
    };
}
