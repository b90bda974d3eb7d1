//! The contract test-kit: every promise the domain's ports document, written once as tests
//! generic over the port, to run against any adapter (ours: SQLite, PostgreSQL, the
//! in-process cache; yours: whatever implements [`Store`] or [`Cache`]).
//!
//! # Running it against an adapter
//!
//! In an integration-test file of your adapter's crate (with `auth-testkit` as a
//! dev-dependency), write a factory and hand it to the macro:
//!
//! ```no_run
//! use auth_store_sqlite::SqliteStore;
//! use auth_testkit::contract::Fixture;
//! use tempfile::TempDir;
//!
//! /// A fresh, empty store per case, with the directory that must outlive it. A factory
//! /// for a networked store returns `None` (after saying why) when its server is down.
//! async fn store() -> Option<Fixture<SqliteStore, TempDir>> {
//!     let dir = tempfile::tempdir().expect("temporary directory");
//!     let store = SqliteStore::open(&dir.path().join("auth.db"), 4)
//!         .await
//!         .expect("sqlite store");
//!     Some(Fixture::with_guard(store, dir))
//! }
//!
//! auth_testkit::store_contract_tests!(store().await);
//! # fn main() {}
//! ```
//!
//! [`store_contract_tests!`](crate::store_contract_tests) expands to one `#[test]` per case
//! (in a module `store_contract`), so `cargo test` lists each by name:
//! `store_contract::of_sixteen_concurrent_rotations_of_one_token_one_wins ... ok`.
//! [`cache_contract_tests!`](crate::cache_contract_tests) does the same for a [`Cache`]
//! (module `cache_contract`).
//!
//! ## The factory
//!
//! The macro's argument is an expression, evaluated inside an async block once per case,
//! that yields `Option<F>` where `F` dereferences to the port: a [`Fixture`] (the port,
//! plus a guard that must outlive it: a temporary directory, a throwaway database), an
//! `Arc<S>`, or a `Box<S>`. A [`Fixture`] drops the port before its guard, so a database
//! can be dropped once the pool using it is gone.
//!
//! - Each call MUST give a store no other test uses at the same time, ideally empty: the
//!   cleanup cases assert exact counts of what was deleted, and the outbox cases claim
//!   and count every mail in the store, as do the second-factor cases to see which
//!   changes wrote a mail. (Every other case creates its own uniquely named
//!   users, sessions and tokens, and looks only at those.)
//! - `None` skips the case: it passes without running, and the macro writes
//!   `SKIPPED <case>` to stderr (past the harness's capture, so it shows in a plain
//!   `cargo test`). Return `None` only when the adapter's backing service is unreachable,
//!   and say why first: write to `std::io::stderr()` directly, since `eprintln!` output of
//!   a passing test is captured and never shown. Under CI (`CI` set), panic instead: a
//!   contract that silently did not run is not a contract. Failing to set up a reachable
//!   service is a panic, not a skip.
//!
//! ## Runtime
//!
//! Each case runs on its own multi-thread Tokio runtime with two workers (as under
//! `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`); the factory runs on it
//! too. The racy cases run their calls on separate threads at once (see [`race`]), so the
//! database or the lock decides, not the scheduling.
//!
//! ## Times
//!
//! Cases use times around the real current time ([`fixtures::now`]), since an in-process
//! cache may judge expiry against the system clock. They are whole milliseconds, and every
//! record read back is compared whole with the one written: an adapter MUST keep
//! timestamps to the millisecond.
//!
//! # Calling cases one by one
//!
//! Every case is also a public `async fn` generic over the port, in [`store`] and
//! [`cache`], for a team that wants its own test layout: call it from a multi-thread
//! runtime (racy cases panic on a current-thread one).
//!
//! [`Store`]: auth_domain::ports::Store
//! [`Cache`]: auth_domain::ports::Cache
#![warn(missing_docs)]

use std::fmt::Debug;
use std::future::Future;
use std::ops::Deref;
use std::sync::Barrier;

use tokio::runtime::{Handle, RuntimeFlavor};

pub mod cache;
pub mod fixtures;
pub mod store;

/// A port under test and whatever must outlive it (a temporary directory, a throwaway
/// database). Dereferences to the port. Dropping it drops the port first, then the guard.
#[derive(Debug)]
pub struct Fixture<P, G = ()> {
    // Field order is drop order: the port (and its pool) goes before its database.
    port: P,
    guard: G,
}

impl<P> Fixture<P> {
    /// A port that needs nothing kept alive beside it.
    pub fn new(port: P) -> Self {
        Self { port, guard: () }
    }
}

impl<P, G> Fixture<P, G> {
    /// A port and what must outlive it.
    pub fn with_guard(port: P, guard: G) -> Self {
        Self { port, guard }
    }

    /// The guard.
    pub fn guard(&self) -> &G {
        &self.guard
    }
}

impl<P, G> Deref for Fixture<P, G> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.port
    }
}

/// Runs one case as the macros do: on a fresh multi-thread Tokio runtime with two
/// workers, blocking until it ends.
///
/// # Panics
/// If the runtime cannot be built, or the case panics.
pub fn run<F: Future<Output = ()>>(case: F) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("tokio runtime: {err}"),
    };
    runtime.block_on(case);
}

/// Says on stderr that `case` was skipped (its factory gave `None`), past the test
/// harness's output capture, so that the line shows in a plain `cargo test` run.
pub fn announce_skip(case: &str) {
    use std::io::Write as _;
    let line = format!("SKIPPED {case}: the factory gave no port (its service is unreachable)\n");
    // Written to the handle, not through `eprintln!`, which the test harness captures.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Runs `n` calls at once and returns their results in call order: each on its own
/// thread, released together by a barrier, so they really overlap (a lock or a
/// conditional update must decide between them, never the order they were polled in).
/// `call(i)` makes the `i`-th future; it may borrow from the caller.
///
/// # Panics
/// Outside a multi-thread Tokio runtime, or if a call panics.
pub fn race<T, Fut, Call>(n: usize, call: Call) -> Vec<T>
where
    T: Send,
    Fut: Future<Output = T>,
    Call: Fn(usize) -> Fut + Sync,
{
    let handle = match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => handle,
        _ => panic!(
            "racy contract cases need a multi-thread Tokio runtime: \
             #[tokio::test(flavor = \"multi_thread\")] or auth_testkit::contract::run"
        ),
    };
    let start = Barrier::new(n);
    // The calls block their threads, not the runtime's workers: this one hands its work
    // over to another worker while it waits.
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (handle, start, call) = (&handle, &start, &call);
                    scope.spawn(move || {
                        let future = call(i);
                        start.wait();
                        handle.block_on(future)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| match thread.join() {
                    Ok(result) => result,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    })
}

/// Unwraps results and options in cases, naming what failed (and pointing at the case's
/// line, not this one).
pub(crate) trait Must<T> {
    fn must(self, what: &str) -> T;
}

impl<T, E: Debug> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self, what: &str) -> T {
        match self {
            Ok(value) => value,
            Err(err) => panic!("{what}: {err:?}"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    #[track_caller]
    fn must(self, what: &str) -> T {
        match self {
            Some(value) => value,
            None => panic!("{what}: got None"),
        }
    }
}

/// Expands to one `#[test]` per case of the [`Store`](auth_domain::ports::Store) contract,
/// in a module `store_contract`, each running on a fresh two-worker multi-thread Tokio
/// runtime.
///
/// The argument is an expression evaluated in an async block once per case, yielding
/// `Option<F>` where `F` dereferences to the store under test (a
/// [`Fixture`](crate::contract::Fixture), an `Arc`, a `Box`); `None` skips the case (the
/// factory says why; under CI it panics instead). Each call must give a store no other
/// test uses at the same time. See [`contract`](crate::contract) for the whole story.
///
/// ```no_run
/// use auth_store_sqlite::SqliteStore;
/// use auth_testkit::contract::Fixture;
/// use tempfile::TempDir;
///
/// async fn store() -> Option<Fixture<SqliteStore, TempDir>> {
///     let dir = tempfile::tempdir().expect("temporary directory");
///     let store = SqliteStore::open(&dir.path().join("auth.db"), 4).await.expect("store");
///     Some(Fixture::with_guard(store, dir))
/// }
///
/// auth_testkit::store_contract_tests!(store().await);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr $(,)?) => {
        #[allow(unused_imports)]
        mod store_contract {
            use super::*;

            $crate::__contract_cases! { ($make) store;
                users::a_user_is_found_by_id_email_index_and_normalized_username,
                users::a_username_taken_in_any_case_is_refused,
                users::an_email_taken_by_another_account_is_refused,
                users::a_profile_update_changes_only_the_given_fields,
                users::a_rename_onto_a_taken_username_is_refused,
                users::changes_to_a_missing_account_are_not_found,
                users::an_email_change_takes_effect_verified_unless_the_email_is_taken,
                users::marking_the_email_verified_is_idempotent,
                users::a_new_password_and_a_login_are_recorded,
                users::deleting_a_user_deletes_its_sessions_and_tokens,
                users::of_twenty_concurrent_registrations_with_one_email_one_wins,
                users::of_twenty_concurrent_registrations_with_one_username_one_wins,
                sessions::a_session_is_found_by_id,
                sessions::active_sessions_are_live_unexpired_and_newest_first,
                sessions::revoking_a_session_is_idempotent_and_tells_whether_it_was_live,
                sessions::revoking_a_users_sessions_spares_the_excepted_one_and_returns_the_revoked,
                sessions::revoked_since_lists_sessions_revoked_at_or_after_the_time,
                rotation::a_first_rotation_wins_and_marks_the_session_used,
                rotation::a_second_rotation_reports_the_first_rotation_time,
                rotation::an_unknown_refresh_token_is_unknown,
                rotation::rotation_returns_the_session_as_stored_even_when_revoked_or_expired,
                rotation::of_sixteen_concurrent_rotations_of_one_token_one_wins,
                one_time::a_one_time_token_is_found_by_hash_and_kind,
                one_time::a_one_time_token_is_consumed_once,
                one_time::an_expired_one_time_token_is_not_consumed,
                one_time::of_ten_concurrent_consumptions_of_one_token_one_wins,
                revocations::a_users_not_before_mark_never_moves_back,
                revocations::user_revocations_lists_only_marks_in_force,
                revocations::a_users_mark_outlives_the_account,
                cleanup::cleanup_deletes_expired_sessions_with_their_refresh_tokens,
                cleanup::cleanup_deletes_sessions_revoked_before_the_cutoff_only,
                cleanup::cleanup_deletes_expired_and_used_one_time_tokens,
                cleanup::cleanup_deletes_expired_user_marks,
                cleanup::cleanup_keeps_everything_still_usable,
                cleanup::cleanup_deletes_dead_mails_past_their_retention_only,
                cleanup::cleanup_deletes_unverified_accounts_past_their_time_only,
                passwords::a_pending_registration_is_found_by_its_taken_email_and_password_tag,
                passwords::a_pending_registration_is_never_marked_verified,
                passwords::setting_a_password_adds_a_version_and_kills_reset_and_change_email_links,
                passwords::a_rehash_keeps_the_version_and_never_overwrites_a_new_password,
                passwords::an_email_change_kills_every_link_mailed_before,
                passwords::an_email_change_whose_pending_email_was_cancelled_is_stale,
                passwords::a_profile_change_expecting_an_old_password_version_is_stale,
                passwords::a_login_session_is_stored_only_while_the_password_version_holds,
                passwords::of_logins_racing_a_password_change_each_is_before_it_or_refused,
                passwords::a_deletion_expecting_an_old_password_version_is_stale,
                outbox::an_enqueued_mail_is_claimed_as_written_with_its_attempt_counted,
                outbox::a_claimed_mail_is_claimed_again_only_when_its_lease_ends,
                outbox::a_claim_takes_at_most_its_limit_earliest_due_first,
                outbox::a_retried_mail_is_due_again_at_its_retry_time,
                outbox::a_sent_mail_is_gone,
                outbox::a_dead_mail_is_never_claimed_and_counted_dead,
                outbox::a_worker_whose_lease_ran_out_cannot_undo_the_next_claim,
                outbox::a_released_mail_is_due_at_once_with_its_attempt_given_back,
                outbox::retry_dead_and_release_leave_a_dead_mail_as_it_is,
                outbox::outbox_stats_count_queued_and_dead_mails_and_tell_the_oldest_queued,
                outbox::enqueueing_a_mail_with_a_link_writes_its_token,
                outbox::a_registration_writes_its_mail_unless_it_is_refused,
                outbox::refused_changes_write_no_mail,
                outbox::changes_write_their_mail_with_them,
                outbox::of_four_workers_claiming_forty_mails_each_mail_is_claimed_once,
                outbox::a_change_whose_mail_cannot_be_written_changes_nothing,
                leases::a_renewed_lease_keeps_the_mail_from_other_claims_until_a_lease_after_the_renewal,
                leases::a_renewal_extends_only_the_leases_its_claim_still_holds,
                leases::releasing_every_lease_makes_claimed_mails_due_at_once_with_their_attempt_kept,
                mfa::the_second_factors_of_an_unknown_or_new_user_are_empty,
                mfa::a_pending_totp_is_stored_replaced_and_refused_once_confirmed,
                mfa::a_totp_is_confirmed_only_with_its_pending_secret_and_replaces_the_codes,
                mfa::deleting_a_totp_tells_a_confirmed_one_and_keeps_codes_while_a_passkey_is_left,
                mfa::replacing_the_recovery_codes_kills_the_old_set,
                mfa::a_recovery_code_is_used_once_and_only_by_its_user,
                mfa::of_eight_concurrent_uses_of_one_recovery_code_one_wins,
                mfa::a_passkey_is_stored_and_found_by_its_credential_id,
                mfa::a_credential_registered_already_is_taken,
                mfa::of_eight_concurrent_registrations_of_one_credential_one_wins,
                mfa::a_passkey_use_is_recorded_only_at_the_expected_counter,
                mfa::of_eight_concurrent_sign_ins_with_one_counter_one_is_recorded,
                mfa::deleting_another_users_passkey_deletes_nothing,
                mfa::deleting_a_user_deletes_its_second_factors,
                mfa::mfa_lists_passkeys_oldest_first_and_counts_unused_codes,
                mfa::second_factor_writes_for_a_missing_account_change_nothing,
                mfa::second_factor_enabled_agrees_with_the_record,
                health::ping_answers,
            }
        }
    };
}

/// Expands to one `#[test]` per case of the [`Cache`](auth_domain::ports::Cache) contract
/// (revocation list, rate limiter, attempt counter, short-lived values), in a module `cache_contract`; the
/// argument is a factory as for [`store_contract_tests!`](crate::store_contract_tests).
///
/// ```no_run
/// use auth_cache_memory::MemoryCache;
/// use auth_testkit::contract::Fixture;
///
/// auth_testkit::cache_contract_tests!(Some(Fixture::new(MemoryCache::new())));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! cache_contract_tests {
    ($make:expr $(,)?) => {
        #[allow(unused_imports)]
        mod cache_contract {
            use super::*;

            $crate::__contract_cases! { ($make) cache;
                revocations::a_revoked_token_shows_in_the_revocation_state,
                revocations::a_revoked_session_shows_in_the_revocation_state,
                revocations::a_users_not_before_mark_shows_in_the_revocation_state,
                revocations::a_users_not_before_mark_never_moves_back,
                revocations::an_earlier_until_does_not_shorten_a_revocation,
                warming::a_warmed_list_needs_no_warming_and_keeps_its_revocations,
                rate::a_burst_of_the_limit_is_allowed_then_refused_with_a_retry_after,
                rate::rate_limit_keys_are_independent,
                rate::of_fifty_concurrent_hits_with_a_limit_of_ten_ten_are_allowed,
                attempts::failures_up_to_the_threshold_lock_the_key,
                attempts::a_success_clears_failures_but_keeps_the_escalation_level,
                attempts::concurrent_failures_are_all_counted,
                attempts::a_reservation_counts_at_once_and_a_locked_key_refuses_it,
                attempts::of_fifty_concurrent_reservations_only_the_threshold_are_counted,
                attempts::a_success_lifts_only_the_lock_its_own_reservation_set,
                ephemeral::a_value_put_is_read_back_and_a_second_put_replaces_it,
                ephemeral::a_value_is_gone_at_its_expiry,
                ephemeral::a_value_is_taken_once,
                ephemeral::of_eight_concurrent_takes_one_gets_the_value,
                ephemeral::a_claim_succeeds_once_until_its_mark_expires,
                ephemeral::of_eight_concurrent_claims_one_succeeds,
                ephemeral::a_counter_counts_up_and_keeps_its_first_expiry,
                ephemeral::concurrent_increments_are_all_counted,
                ephemeral::removing_is_idempotent,
                ephemeral::binary_values_survive,
                ephemeral::similar_keys_are_distinct,
                health::ping_answers,
            }
        }
    };
}

/// One `#[test]` per listed case. Internal to the contract macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    (($make:expr) $port:ident; $($area:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::contract::run(async {
                    let Some(fixture) = $make else {
                        $crate::contract::announce_skip(concat!(
                            module_path!(),
                            "::",
                            stringify!($case)
                        ));
                        return;
                    };
                    $crate::contract::$port::$area::$case(&*fixture).await;
                });
            }
        )*
    };
}
