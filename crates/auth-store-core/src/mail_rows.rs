//! The part of [`rows!`](crate::rows) for single-use tokens and the outbox: the rows one
//! mail writes.

/// Generates the rows of `one_time_tokens` and `outbox`, `OutgoingRows` (what one
/// [`Outgoing`](auth_domain::model::Outgoing) writes), `outgoing_rows` and `readable`.
/// Called by [`rows!`](crate::rows) only; same arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __mail_rows {
    (
        backend: $backend:path,
        columns: $cols:ty,
        id: $id:ty,
        time: $time:ty,
        dialect: $dialect:literal $(,)?
    ) => {
        /// A row of `one_time_tokens`.
        #[derive(Debug, Queryable, Selectable, Insertable)]
        #[diesel(table_name = one_time_tokens, check_for_backend($backend))]
        pub(crate) struct OneTimeRow {
            pub hash: Vec<u8>,
            pub kind: String,
            pub user_id: $id,
            pub created_at: $time,
            pub expires_at: $time,
            pub used_at: Option<$time>,
            pub email_index: Option<Vec<u8>>,
        }

        impl OneTimeRow {
            pub(crate) fn from_record(token: &auth_domain::model::OneTimeTokenRecord) -> Self {
                Self {
                    hash: $crate::columns::hash_bytes(&token.hash),
                    kind: token.kind.as_str().to_owned(),
                    user_id: <$cols>::id(token.user_id.0),
                    created_at: <$cols>::time(token.created_at),
                    expires_at: <$cols>::time(token.expires_at),
                    used_at: token.used_at.map(<$cols>::time),
                    email_index: token.email_index.as_ref().map(|i| i.0.clone()),
                }
            }

            pub(crate) fn into_record(
                self,
            ) -> Result<auth_domain::model::OneTimeTokenRecord, auth_domain::ports::PortError>
            {
                use auth_domain::types::{BlindIndex, UserId};
                const T: &str = "one_time_tokens";
                Ok(auth_domain::model::OneTimeTokenRecord {
                    hash: $crate::columns::token_hash(T, &self.hash)?,
                    kind: $crate::columns::kind(T, &self.kind, auth_domain::model::OneTimeKind::parse)?,
                    user_id: UserId(<$cols>::read_id(T, self.user_id)?),
                    created_at: <$cols>::read_time(T, self.created_at)?,
                    expires_at: <$cols>::read_time(T, self.expires_at)?,
                    used_at: <$cols>::read_opt_time(T, self.used_at)?,
                    email_index: self.email_index.map(BlindIndex),
                })
            }
        }

        /// A row of `outbox`. `payload` is NULL only once the mail is dead.
        #[derive(Debug, Queryable, Selectable, Insertable)]
        #[diesel(table_name = outbox, check_for_backend($backend))]
        pub(crate) struct OutboxRow {
            pub id: $id,
            pub kind: String,
            pub payload: Option<Vec<u8>>,
            pub created_at: $time,
            pub due_at: $time,
            pub attempts: i32,
            pub dead_at: Option<$time>,
        }

        impl OutboxRow {
            /// A newly queued mail: due at once (when it was created), not dead.
            pub(crate) fn from_record(
                mail: &auth_domain::model::OutboxMail,
            ) -> Result<Self, auth_domain::ports::PortError> {
                Ok(Self {
                    id: <$cols>::id(mail.id),
                    kind: mail.kind.as_str().to_owned(),
                    payload: Some(mail.payload.0.clone()),
                    created_at: <$cols>::time(mail.created_at),
                    due_at: <$cols>::time(mail.created_at),
                    attempts: $crate::columns::stored_attempts(mail.attempts).ok_or_else(|| {
                        auth_domain::ports::PortError::unexpected("outbox attempts out of range")
                    })?,
                    dead_at: None,
                })
            }

            /// The mail of a queued row (a dead one has no payload left to give).
            pub(crate) fn into_record(
                self,
            ) -> Result<auth_domain::model::OutboxMail, auth_domain::ports::PortError> {
                const T: &str = "outbox";
                Ok(auth_domain::model::OutboxMail {
                    id: <$cols>::read_id(T, self.id)?,
                    kind: $crate::columns::kind(T, &self.kind, auth_domain::model::MailKind::parse)?,
                    payload: auth_domain::types::Sealed(
                        self.payload
                            .ok_or_else(|| $crate::corrupt(T, "queued mail without a payload"))?,
                    ),
                    created_at: <$cols>::read_time(T, self.created_at)?,
                    attempts: $crate::columns::read_attempts(self.attempts)?,
                })
            }
        }

        /// The mails of claimed rows; a row this build cannot read (a kind added by a
        /// newer version, a broken value) is left out, and claimed again when its lease
        /// ends. Logged here because it is not returned.
        pub(crate) fn readable(rows: Vec<OutboxRow>) -> Vec<auth_domain::model::OutboxMail> {
            rows.into_iter()
                .filter_map(|row| {
                    let id = row.id.to_string();
                    match row.into_record() {
                        Ok(mail) => Some(mail),
                        Err(err) => {
                            $crate::__tracing::warn!(
                                id = %id,
                                error = ?err,
                                concat!($dialect, ": outbox row left out of the claim")
                            );
                            None
                        }
                    }
                })
                .collect()
        }

        /// The rows an [`Outgoing`](auth_domain::model::Outgoing) writes: its link's token
        /// (if any) and the mail.
        #[derive(Debug)]
        pub(crate) struct OutgoingRows {
            pub token: Option<OneTimeRow>,
            pub mail: OutboxRow,
        }

        impl OutgoingRows {
            pub(crate) fn from_record(
                outgoing: &auth_domain::model::Outgoing,
            ) -> Result<Self, auth_domain::ports::PortError> {
                Ok(Self {
                    token: outgoing.token.as_ref().map(OneTimeRow::from_record),
                    mail: OutboxRow::from_record(&outgoing.mail)?,
                })
            }
        }

        /// [`OutgoingRows::from_record`] of an optional mail.
        pub(crate) fn outgoing_rows(
            mail: Option<&auth_domain::model::Outgoing>,
        ) -> Result<Option<OutgoingRows>, auth_domain::ports::PortError> {
            mail.map(OutgoingRows::from_record).transpose()
        }
    };
}
