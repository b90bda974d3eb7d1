//! The tables, written by hand to match `migrations/sqlite` (see its `up.sql` for why each
//! column is what it is). Ids are UUID text, timestamps unix milliseconds.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        username_normalized -> Text,
        email_index -> Binary,
        email_sealed -> Binary,
        phone_index -> Nullable<Binary>,
        phone_sealed -> Nullable<Binary>,
        name_sealed -> Binary,
        surname_sealed -> Binary,
        password_hash -> Text,
        email_verified_at -> Nullable<BigInt>,
        pending_email_sealed -> Nullable<Binary>,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        password_version -> BigInt,
        pending_for_email_index -> Nullable<Binary>,
        pending_password_tag -> Nullable<Integer>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_used_at -> BigInt,
        expires_at -> BigInt,
        user_agent -> Nullable<Text>,
        ip_sealed -> Nullable<Binary>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (hash) {
        hash -> Binary,
        session_id -> Text,
        created_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    one_time_tokens (hash) {
        hash -> Binary,
        kind -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        email_index -> Nullable<Binary>,
    }
}

diesel::table! {
    user_revocations (user_id) {
        user_id -> Text,
        not_before -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        payload -> Nullable<Binary>,
        created_at -> BigInt,
        due_at -> BigInt,
        attempts -> Integer,
        dead_at -> Nullable<BigInt>,
        leased_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    totp_authenticators (user_id) {
        user_id -> Text,
        secret_sealed -> Binary,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Binary,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Binary,
        name_sealed -> Binary,
        credential -> Text,
        sign_count -> BigInt,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
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
    totp_authenticators,
    recovery_codes,
    passkeys
);
