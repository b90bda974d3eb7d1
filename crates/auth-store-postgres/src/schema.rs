//! The tables, written by hand to match `migrations/postgres` (see its `up.sql` for why each
//! column is what it is). Ids are UUID, times TIMESTAMPTZ, hashes and sealed values BYTEA.

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        username_normalized -> Text,
        email_index -> Bytea,
        email_sealed -> Bytea,
        phone_index -> Nullable<Bytea>,
        phone_sealed -> Nullable<Bytea>,
        name_sealed -> Bytea,
        surname_sealed -> Bytea,
        password_hash -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        pending_email_sealed -> Nullable<Bytea>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
        password_version -> BigInt,
        pending_for_email_index -> Nullable<Bytea>,
        pending_password_tag -> Nullable<Integer>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        user_agent -> Nullable<Text>,
        ip_sealed -> Nullable<Bytea>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_tokens (hash) {
        hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    one_time_tokens (hash) {
        hash -> Bytea,
        kind -> Text,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        email_index -> Nullable<Bytea>,
    }
}

diesel::table! {
    user_revocations (user_id) {
        user_id -> Uuid,
        not_before -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        kind -> Text,
        payload -> Nullable<Bytea>,
        created_at -> Timestamptz,
        due_at -> Timestamptz,
        attempts -> Integer,
        dead_at -> Nullable<Timestamptz>,
        leased_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    totp_authenticators (user_id) {
        user_id -> Uuid,
        secret_sealed -> Bytea,
        created_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Uuid,
        code_hash -> Bytea,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Uuid,
        user_id -> Uuid,
        credential_id -> Bytea,
        name_sealed -> Bytea,
        credential -> Text,
        sign_count -> BigInt,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(one_time_tokens -> users (user_id));
diesel::joinable!(totp_authenticators -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    one_time_tokens,
    user_revocations,
    outbox,
    totp_authenticators,
    recovery_codes,
    passkeys
);
