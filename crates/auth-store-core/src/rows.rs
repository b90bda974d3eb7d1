//! [`rows!`]: every table's row types and their conversions, once for both dialects.

/// Generates, in the module it is invoked in, the row types of every table and their
/// conversions to and from the domain's records, for one backend:
///
/// ```ignore
/// use crate::schema::{one_time_tokens, outbox, passkeys, recovery_codes, refresh_tokens};
/// use crate::schema::{sessions, totp_authenticators, users};
/// auth_store_core::rows! {
///     backend: diesel::sqlite::Sqlite,
///     columns: Millis,   // impl auth_store_core::Columns
///     id: String,        // Millis's Id
///     time: i64,         // Millis's Time
///     dialect: "sqlite", // for log lines
/// }
/// ```
///
/// The schema's tables must be in scope under their names (`users`, `sessions`,
/// `refresh_tokens`, `one_time_tokens`, `outbox`, `totp_authenticators`, `recovery_codes`,
/// `passkeys`). The rows are `UserRow`,
/// `ProfileChangeset`, `SessionRow`, `NewRefreshToken`, `NewSession` (a session and its
/// first refresh token), `RotationRow` (what a rotation found), `OneTimeRow`, `OutboxRow` and
/// `OutgoingRows` (the rows one [`Outgoing`](auth_domain::model::Outgoing) writes; the
/// adapter adds its own `insert`, blocking or async, here and on `NewSession`); plus `outgoing_rows` and
/// `readable` (the claimed outbox rows this build can read); and for second factors
/// `TotpRow`, `RecoveryCodeRow` (`recovery_code_rows`: a new set) and `PasskeyRow`.
///
/// A macro, not generic types: Diesel's derives need the table and the column types at
/// the struct, and those differ per dialect (text ids and millisecond times in SQLite).
#[macro_export]
macro_rules! rows {
    (
        backend: $backend:path,
        columns: $cols:ty,
        id: $id:ty,
        time: $time:ty,
        dialect: $dialect:literal $(,)?
    ) => {
        use $crate::Columns as _;
        use $crate::columns as __col;

        /// A row of `users`.
        #[derive(Debug, Queryable, Selectable, Insertable)]
        #[diesel(table_name = users, check_for_backend($backend))]
        pub(crate) struct UserRow {
            pub id: $id,
            pub username: String,
            pub username_normalized: String,
            pub email_index: Vec<u8>,
            pub email_sealed: Vec<u8>,
            pub phone_index: Option<Vec<u8>>,
            pub phone_sealed: Option<Vec<u8>>,
            pub name_sealed: Vec<u8>,
            pub surname_sealed: Vec<u8>,
            pub password_hash: String,
            pub email_verified_at: Option<$time>,
            pub pending_email_sealed: Option<Vec<u8>>,
            pub created_at: $time,
            pub updated_at: $time,
            pub last_login_at: Option<$time>,
            pub password_version: i64,
            pub pending_for_email_index: Option<Vec<u8>>,
            pub pending_password_tag: Option<i32>,
        }

        impl UserRow {
            pub(crate) fn from_record(user: &auth_domain::model::UserRecord) -> Self {
                Self {
                    id: <$cols>::id(user.id.0),
                    username: user.username.clone(),
                    username_normalized: user.username_normalized.clone(),
                    email_index: user.email_index.0.clone(),
                    email_sealed: user.email_sealed.0.clone(),
                    phone_index: user.phone_index.as_ref().map(|i| i.0.clone()),
                    phone_sealed: user.phone_sealed.as_ref().map(|s| s.0.clone()),
                    name_sealed: user.name_sealed.0.clone(),
                    surname_sealed: user.surname_sealed.0.clone(),
                    password_hash: user.password_hash.0.clone(),
                    email_verified_at: user.email_verified_at.map(<$cols>::time),
                    pending_email_sealed: user.pending_email_sealed.as_ref().map(|s| s.0.clone()),
                    created_at: <$cols>::time(user.created_at),
                    updated_at: <$cols>::time(user.updated_at),
                    last_login_at: user.last_login_at.map(<$cols>::time),
                    password_version: user.password_version,
                    pending_for_email_index: user
                        .pending_for
                        .as_ref()
                        .map(|p| p.email_index.0.clone()),
                    pending_password_tag: user
                        .pending_for
                        .as_ref()
                        .map(|p| i32::from(p.password_tag)),
                }
            }

            pub(crate) fn into_record(
                self,
            ) -> Result<auth_domain::model::UserRecord, auth_domain::ports::PortError> {
                use auth_domain::types::{BlindIndex, PasswordHash, Sealed, UserId};
                const T: &str = "users";
                Ok(auth_domain::model::UserRecord {
                    id: UserId(<$cols>::read_id(T, self.id)?),
                    username: self.username,
                    username_normalized: self.username_normalized,
                    email_index: BlindIndex(self.email_index),
                    email_sealed: Sealed(self.email_sealed),
                    phone_index: self.phone_index.map(BlindIndex),
                    phone_sealed: self.phone_sealed.map(Sealed),
                    name_sealed: Sealed(self.name_sealed),
                    surname_sealed: Sealed(self.surname_sealed),
                    password_hash: PasswordHash(self.password_hash),
                    email_verified_at: <$cols>::read_opt_time(T, self.email_verified_at)?,
                    pending_email_sealed: self.pending_email_sealed.map(Sealed),
                    created_at: <$cols>::read_time(T, self.created_at)?,
                    updated_at: <$cols>::read_time(T, self.updated_at)?,
                    last_login_at: <$cols>::read_opt_time(T, self.last_login_at)?,
                    password_version: self.password_version,
                    pending_for: __col::pending_for(
                        self.pending_for_email_index,
                        self.pending_password_tag,
                    ),
                })
            }
        }

        /// The columns a profile change sets; `None` leaves a column as it is, `Some(None)`
        /// sets it to NULL.
        #[derive(Debug, AsChangeset)]
        #[diesel(table_name = users, check_for_backend($backend))]
        pub(crate) struct ProfileChangeset {
            pub username: Option<String>,
            pub username_normalized: Option<String>,
            pub name_sealed: Option<Vec<u8>>,
            pub surname_sealed: Option<Vec<u8>>,
            pub phone_index: Option<Option<Vec<u8>>>,
            pub phone_sealed: Option<Option<Vec<u8>>>,
            pub pending_email_sealed: Option<Option<Vec<u8>>>,
            pub updated_at: $time,
        }

        impl ProfileChangeset {
            /// The columns `changes` sets, at `now`.
            pub(crate) fn new(
                changes: &auth_domain::model::ProfileChanges,
                now: auth_domain::types::Timestamp,
            ) -> Self {
                let (username, username_normalized) = changes.username.clone().unzip();
                let (phone_index, phone_sealed) = match &changes.phone {
                    None => (None, None),
                    Some(None) => (Some(None), Some(None)),
                    Some(Some((index, sealed))) => {
                        (Some(Some(index.0.clone())), Some(Some(sealed.0.clone())))
                    }
                };
                Self {
                    username,
                    username_normalized,
                    name_sealed: changes.name_sealed.as_ref().map(|s| s.0.clone()),
                    surname_sealed: changes.surname_sealed.as_ref().map(|s| s.0.clone()),
                    phone_index,
                    phone_sealed,
                    pending_email_sealed: changes
                        .pending_email_sealed
                        .as_ref()
                        .map(|s| Some(s.0.clone())),
                    updated_at: <$cols>::time(now),
                }
            }
        }

        /// A row of `sessions`.
        #[derive(Debug, Queryable, Selectable, Insertable)]
        #[diesel(table_name = sessions, check_for_backend($backend))]
        pub(crate) struct SessionRow {
            pub id: $id,
            pub user_id: $id,
            pub created_at: $time,
            pub last_used_at: $time,
            pub expires_at: $time,
            pub user_agent: Option<String>,
            pub ip_sealed: Option<Vec<u8>>,
            pub revoked_at: Option<$time>,
        }

        impl SessionRow {
            pub(crate) fn from_record(session: &auth_domain::model::SessionRecord) -> Self {
                Self {
                    id: <$cols>::id(session.id.0),
                    user_id: <$cols>::id(session.user_id.0),
                    created_at: <$cols>::time(session.created_at),
                    last_used_at: <$cols>::time(session.last_used_at),
                    expires_at: <$cols>::time(session.expires_at),
                    user_agent: session.user_agent.clone(),
                    ip_sealed: session.ip_sealed.as_ref().map(|s| s.0.clone()),
                    revoked_at: session.revoked_at.map(<$cols>::time),
                }
            }

            pub(crate) fn into_record(
                self,
            ) -> Result<auth_domain::model::SessionRecord, auth_domain::ports::PortError> {
                use auth_domain::types::{Sealed, SessionId, UserId};
                const T: &str = "sessions";
                Ok(auth_domain::model::SessionRecord {
                    id: SessionId(<$cols>::read_id(T, self.id)?),
                    user_id: UserId(<$cols>::read_id(T, self.user_id)?),
                    created_at: <$cols>::read_time(T, self.created_at)?,
                    last_used_at: <$cols>::read_time(T, self.last_used_at)?,
                    expires_at: <$cols>::read_time(T, self.expires_at)?,
                    user_agent: self.user_agent,
                    ip_sealed: self.ip_sealed.map(Sealed),
                    revoked_at: <$cols>::read_opt_time(T, self.revoked_at)?,
                })
            }
        }

        /// A new row of `refresh_tokens` (never rotated yet).
        #[derive(Debug, Insertable)]
        #[diesel(table_name = refresh_tokens, check_for_backend($backend))]
        pub(crate) struct NewRefreshToken {
            pub hash: Vec<u8>,
            pub session_id: $id,
            pub created_at: $time,
        }

        /// A new session and its first refresh token, as rows.
        pub(crate) struct NewSession {
            pub session: SessionRow,
            pub token: NewRefreshToken,
        }

        impl NewSession {
            pub(crate) fn of(
                session: &auth_domain::model::SessionRecord,
                refresh: &auth_domain::types::TokenHash,
            ) -> Self {
                Self {
                    session: SessionRow::from_record(session),
                    token: NewRefreshToken {
                        hash: __col::hash_bytes(refresh),
                        session_id: <$cols>::id(session.id.0),
                        created_at: <$cols>::time(session.created_at),
                    },
                }
            }
        }

        /// What one refresh-token rotation found, still as rows.
        pub(crate) enum RotationRow {
            Rotated(SessionRow),
            AlreadyRotated {
                session: SessionRow,
                rotated_at: Option<$time>,
            },
            Unknown,
        }

        impl RotationRow {
            pub(crate) fn into_rotation(
                self,
            ) -> Result<auth_domain::model::Rotation, auth_domain::ports::PortError> {
                use auth_domain::model::Rotation;
                const T: &str = "refresh_tokens";
                Ok(match self {
                    Self::Rotated(session) => Rotation::Rotated(session.into_record()?),
                    Self::AlreadyRotated {
                        session,
                        rotated_at,
                    } => {
                        // The update matched no row while this one exists: it was rotated.
                        let rotated_at = rotated_at.ok_or_else(|| {
                            $crate::corrupt(T, "live token not matched by rotation")
                        })?;
                        Rotation::AlreadyRotated {
                            session: session.into_record()?,
                            rotated_at: <$cols>::read_time(T, rotated_at)?,
                        }
                    }
                    Self::Unknown => Rotation::Unknown,
                })
            }
        }

        $crate::__mail_rows! {
            backend: $backend,
            columns: $cols,
            id: $id,
            time: $time,
            dialect: $dialect,
        }

        $crate::__mfa_rows! {
            backend: $backend,
            columns: $cols,
            id: $id,
            time: $time,
            dialect: $dialect,
        }
    };
}
