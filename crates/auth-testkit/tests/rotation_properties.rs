//! The refresh-token rotation state machine, as a property: random sequences of
//! operations on a few sessions of one user, run through the real `AuthService` use cases
//! on the test-kit's embedded adapters (SQLite, the in-process cache, real crypto, a clock
//! moved by hand), checked after every step against a small model kept here.
//!
//! The rule modelled (docs/architecture.md "Refresh tokens", decision 0001, and
//! `AuthService::refresh`): a session is one token family with an absolute expiry set at
//! login. Presenting a token of a revoked session is `TokenRevoked`, of an expired one
//! `TokenExpired` (revocation is judged first). Otherwise the newest token rotates: a new
//! successor becomes the only live token. A token rotated at most `reuse_interval` ago
//! yields the successor it already had (same text), creating nothing; one rotated longer
//! ago is reuse: `TokenReused`, and the session is revoked for good. Logging out revokes the
//! session, logging out everywhere every session; neither needs anything but a valid
//! access token. An access token is refused once expired, or once its session is revoked.
//!
//! Invariants checked after each step: every answer is the model's; the store keeps each
//! session's absolute expiry as set at login (a refresh never extends it) and its
//! revocation as the model says; the user's active sessions are the model's live ones;
//! each family has exactly one token not yet rotated and all tokens are distinct; a dead
//! session's tokens (newest and old) are refused again at every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use auth_domain::model::TokenPair;
use auth_domain::policy::Policy;
use auth_domain::ports::{Clock, SessionStore};
use auth_domain::types::{SessionId, Timestamp, UserId};
use auth_domain::{AuthError, ClientContext};
use auth_testkit::{Harness, access, harness, login, refresh, register_and_verify};
use chrono::{TimeDelta, Timelike};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

const ADA: &str = "ada@example.com";
/// Sessions a sequence may open (logins beyond are skipped).
const MAX_SESSIONS: usize = 3;

/// Short lifetimes, so that a sequence of 20 steps crosses each of them.
fn policy() -> Policy {
    Policy {
        access_ttl: TimeDelta::minutes(15),
        refresh_ttl: TimeDelta::hours(1),
        reuse_interval: TimeDelta::seconds(10),
        ..Policy::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// 1 to 9 s: inside the reuse interval of a rotation just made.
    WithinReuse(i64),
    /// Exactly the reuse interval (still inside it).
    AtReuse,
    /// One millisecond past the reuse interval.
    JustPastReuse,
    /// Just past the reuse interval.
    PastReuse,
    /// A quarter second short of an access token's lifetime: past it for a token issued
    /// in the same second (its `iat` and `exp` are whole seconds).
    NearAccess,
    /// Just past an access token's lifetime.
    PastAccess,
    /// Just past a session's absolute lifetime.
    PastSession,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// A new session (skipped once there are `MAX_SESSIONS`).
    Login,
    /// Refresh with the session's newest token.
    RefreshNewest(usize),
    /// Refresh with one of the session's rotated tokens (`back` generations before the
    /// newest's predecessor, wrapping); the newest if none was rotated yet.
    RefreshOld { session: usize, back: usize },
    /// Two tabs: refresh with the newest token, move the clock, refresh with that same
    /// token again.
    Race { session: usize, step: Step },
    /// Log out with the session's latest access token.
    Logout(usize),
    /// Log out everywhere with the session's latest access token.
    LogoutAll(usize),
    /// Move the clock forward.
    Advance(Step),
}

fn op() -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        3 => (1i64..=9).prop_map(Step::WithinReuse),
        1 => Just(Step::AtReuse),
        1 => Just(Step::JustPastReuse),
        2 => Just(Step::PastReuse),
        1 => Just(Step::NearAccess),
        2 => Just(Step::PastAccess),
        1 => Just(Step::PastSession),
    ];
    prop_oneof![
        2 => Just(Op::Login),
        6 => any::<usize>().prop_map(Op::RefreshNewest),
        5 => (any::<usize>(), any::<usize>())
            .prop_map(|(session, back)| Op::RefreshOld { session, back }),
        3 => (any::<usize>(), step.clone()).prop_map(|(session, step)| Op::Race { session, step }),
        2 => any::<usize>().prop_map(Op::Logout),
        1 => any::<usize>().prop_map(Op::LogoutAll),
        7 => step.prop_map(Op::Advance),
    ]
}

#[derive(Debug)]
struct Token {
    text: String,
    rotated_at: Option<Timestamp>,
}

#[derive(Debug)]
struct Session {
    id: SessionId,
    expires_at: Timestamp,
    last_used_at: Timestamp,
    revoked: bool,
    /// The family, oldest first; only the last may be unrotated.
    tokens: Vec<Token>,
    /// The latest access token handed out for this session, and when it expires.
    access: String,
    access_expires: Timestamp,
}

/// What the model says a refresh must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A brand-new successor.
    Fresh,
    /// The successor handed out before, again.
    Same(String),
    Revoked,
    Expired,
    Reused,
}

struct Run {
    h: Harness,
    user: UserId,
    sessions: Vec<Session>,
    policy: Policy,
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

fn floor_secs(t: Timestamp) -> Timestamp {
    t.with_nanosecond(0).unwrap_or(t)
}

impl Run {
    async fn start() -> Result<Self, TestCaseError> {
        let h = harness(policy()).await;
        // Put the clock on exactly half a second: whole milliseconds (what storage keeps),
        // and the steps keep it off whole seconds (what token expiries are), so no answer
        // depends on rounding the model does not state.
        let nanos = i64::from(h.clock.now().timestamp_subsec_nanos());
        h.clock.advance(TimeDelta::nanoseconds(500_000_000 - nanos));
        register_and_verify(&h, ADA, "ada").await;
        let first = login(&h, "ada").await;
        let mut run = Self {
            user: first.profile.id,
            h,
            sessions: Vec::new(),
            policy: policy(),
        };
        run.add_session(&first.tokens)?;
        Ok(run)
    }

    fn now(&self) -> Timestamp {
        self.h.clock.now()
    }

    fn add_session(&mut self, pair: &TokenPair) -> Result<(), TestCaseError> {
        let now = self.now();
        self.check_new_token(refresh(pair))?;
        self.sessions.push(Session {
            id: pair.session_id,
            expires_at: now + self.policy.refresh_ttl,
            last_used_at: now,
            revoked: false,
            tokens: vec![Token {
                text: refresh(pair).to_owned(),
                rotated_at: None,
            }],
            access: access(pair).to_owned(),
            access_expires: floor_secs(now) + self.policy.access_ttl,
        });
        Ok(())
    }

    /// A refresh token never seen before, of our shape.
    fn check_new_token(&self, text: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(text.len(), 43, "a refresh token is 43 characters");
        let seen = self
            .sessions
            .iter()
            .flat_map(|s| &s.tokens)
            .any(|t| t.text == text);
        prop_assert!(!seen, "a successor is new: {}", text);
        Ok(())
    }

    fn expect_refresh(&self, s: usize, k: usize) -> Expect {
        let now = self.now();
        let session = &self.sessions[s];
        if session.revoked {
            return Expect::Revoked;
        }
        if session.expires_at <= now {
            return Expect::Expired;
        }
        match session.tokens[k].rotated_at {
            None => Expect::Fresh,
            Some(at) if now - at > self.policy.reuse_interval => Expect::Reused,
            Some(_) => Expect::Same(session.tokens[k + 1].text.clone()),
        }
    }

    /// Presents token `k` of session `s` and checks the answer against the model.
    async fn refresh(&mut self, s: usize, k: usize) -> Result<(), TestCaseError> {
        let now = self.now();
        let expected = self.expect_refresh(s, k);
        let presented = self.sessions[s].tokens[k].text.clone();
        let result = self
            .h
            .service
            .refresh(&presented, &ClientContext::default())
            .await;
        let id = self.sessions[s].id;
        match (&expected, result) {
            (Expect::Fresh, Ok(pair)) => {
                prop_assert_eq!(pair.session_id, id);
                self.check_new_token(refresh(&pair))?;
                let session = &mut self.sessions[s];
                session.tokens[k].rotated_at = Some(now);
                session.tokens.push(Token {
                    text: refresh(&pair).to_owned(),
                    rotated_at: None,
                });
                session.last_used_at = now;
                session.access = access(&pair).to_owned();
                session.access_expires = floor_secs(now) + self.policy.access_ttl;
            }
            (Expect::Same(successor), Ok(pair)) => {
                prop_assert_eq!(pair.session_id, id);
                prop_assert_eq!(
                    refresh(&pair),
                    successor.as_str(),
                    "within the reuse interval, the same successor"
                );
                let session = &mut self.sessions[s];
                session.access = access(&pair).to_owned();
                session.access_expires = floor_secs(now) + self.policy.access_ttl;
            }
            (Expect::Revoked, Err(AuthError::TokenRevoked))
            | (Expect::Expired, Err(AuthError::TokenExpired)) => {
                // Storage rotates a dead family's newest token all the same (the service
                // judges the session afterwards); the family stays dead.
                let session = &mut self.sessions[s];
                if session.tokens[k].rotated_at.is_none() {
                    session.tokens[k].rotated_at = Some(now);
                    session.last_used_at = now;
                }
            }
            (Expect::Reused, Err(AuthError::TokenReused)) => {
                self.sessions[s].revoked = true;
            }
            (expected, other) => {
                return Err(fail(format!(
                    "refresh of token {k} of session {s}: expected {expected:?}, got {:?}",
                    other.map(|p| p.session_id)
                )));
            }
        }
        Ok(())
    }

    /// What authenticating the session's latest access token must answer.
    fn expect_access(&self, s: usize) -> Result<(), &'static str> {
        let session = &self.sessions[s];
        if session.access_expires <= self.now() {
            Err("TokenExpired")
        } else if session.revoked {
            Err("TokenRevoked")
        } else {
            Ok(())
        }
    }

    async fn logout(&mut self, s: usize, all: bool) -> Result<(), TestCaseError> {
        let expected = self.expect_access(s);
        let result = self.h.service.authenticate(&self.sessions[s].access).await;
        match (expected, result) {
            (Ok(()), Ok(claims)) => {
                prop_assert_eq!(claims.session_id, self.sessions[s].id);
                self.h
                    .service
                    .logout(&claims, all, &ClientContext::default())
                    .await
                    .map_err(|e| fail(format!("logout: {e:?}")))?;
                if all {
                    self.sessions.iter_mut().for_each(|s| s.revoked = true);
                } else {
                    self.sessions[s].revoked = true;
                }
            }
            (Err("TokenExpired"), Err(AuthError::TokenExpired))
            | (Err("TokenRevoked"), Err(AuthError::TokenRevoked)) => {}
            (expected, got) => {
                return Err(fail(format!(
                    "logout with session {s}'s access token: expected {expected:?}, got {:?}",
                    got.map(|c| c.session_id)
                )));
            }
        }
        Ok(())
    }

    async fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let n = self.sessions.len();
        match op {
            Op::Login => {
                if n < MAX_SESSIONS {
                    let logged_in = login(&self.h, "ada").await;
                    prop_assert_eq!(logged_in.profile.id, self.user);
                    self.add_session(&logged_in.tokens)?;
                }
            }
            Op::RefreshNewest(s) => {
                let s = s % n;
                let k = self.sessions[s].tokens.len() - 1;
                self.refresh(s, k).await?;
            }
            Op::RefreshOld { session, back } => {
                let s = session % n;
                let len = self.sessions[s].tokens.len();
                let k = if len < 2 {
                    0
                } else {
                    len - 2 - back % (len - 1)
                };
                self.refresh(s, k).await?;
            }
            Op::Race { session, step } => {
                let s = session % n;
                let k = self.sessions[s].tokens.len() - 1;
                self.refresh(s, k).await?;
                self.advance(step);
                self.refresh(s, k).await?;
            }
            Op::Logout(s) => self.logout(s % n, false).await?,
            Op::LogoutAll(s) => self.logout(s % n, true).await?,
            Op::Advance(step) => self.advance(step),
        }
        Ok(())
    }

    fn advance(&self, step: Step) {
        let by = match step {
            Step::WithinReuse(secs) => TimeDelta::seconds(secs),
            Step::AtReuse => self.policy.reuse_interval,
            Step::JustPastReuse => self.policy.reuse_interval + TimeDelta::milliseconds(1),
            Step::PastReuse => self.policy.reuse_interval + TimeDelta::seconds(1),
            Step::NearAccess => self.policy.access_ttl - TimeDelta::milliseconds(250),
            Step::PastAccess => self.policy.access_ttl + TimeDelta::seconds(1),
            Step::PastSession => self.policy.refresh_ttl + TimeDelta::seconds(1),
        };
        self.h.clock.advance(by);
    }

    /// The invariants that hold after every step.
    async fn check(&mut self) -> Result<(), TestCaseError> {
        let now = self.now();
        let store = &self.h.service.ports().store;
        let mut texts = HashSet::new();
        for (i, session) in self.sessions.iter().enumerate() {
            let live_tokens = session
                .tokens
                .iter()
                .filter(|t| t.rotated_at.is_none())
                .count();
            prop_assert!(
                live_tokens <= 1,
                "session {i}: {live_tokens} unrotated tokens"
            );
            if !session.revoked && session.expires_at > now {
                prop_assert_eq!(live_tokens, 1, "a live family has one live token");
            }
            for t in &session.tokens {
                prop_assert!(texts.insert(t.text.clone()), "tokens are distinct");
            }
            let stored = store
                .session(session.id)
                .await
                .map_err(|e| fail(format!("store: {e:?}")))?
                .ok_or_else(|| fail(format!("session {i} is not stored")))?;
            prop_assert_eq!(stored.user_id, self.user);
            prop_assert_eq!(
                stored.expires_at,
                session.expires_at,
                "session {}: the absolute expiry never moves",
                i
            );
            prop_assert_eq!(stored.last_used_at, session.last_used_at, "session {}", i);
            prop_assert_eq!(
                stored.revoked_at.is_some(),
                session.revoked,
                "session {}: revoked in storage as in the model",
                i
            );
        }
        let mut active: Vec<SessionId> = store
            .active_sessions(self.user, now)
            .await
            .map_err(|e| fail(format!("store: {e:?}")))?
            .into_iter()
            .map(|s| s.id)
            .collect();
        active.sort();
        let mut live: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|s| !s.revoked && s.expires_at > now)
            .map(|s| s.id)
            .collect();
        live.sort();
        prop_assert_eq!(active, live, "the active sessions are the live ones");

        // Access tokens, and every dead family refused again, whatever token it shows.
        for s in 0..self.sessions.len() {
            let expected = self.expect_access(s);
            let got = self.h.service.authenticate(&self.sessions[s].access).await;
            let agrees = match (&expected, &got) {
                (Ok(()), Ok(claims)) => claims.session_id == self.sessions[s].id,
                (Err("TokenExpired"), Err(AuthError::TokenExpired))
                | (Err("TokenRevoked"), Err(AuthError::TokenRevoked)) => true,
                _ => false,
            };
            prop_assert!(
                agrees,
                "access token of session {}: expected {:?}, got {:?}",
                s,
                expected,
                got.map(|c| c.session_id)
            );
            let session = &self.sessions[s];
            if session.revoked || session.expires_at <= now {
                let newest = session.tokens.len() - 1;
                self.refresh(s, newest).await?;
                self.refresh(s, 0).await?;
            }
        }
        Ok(())
    }
}

async fn run_sequence(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut run = Run::start().await?;
    run.check().await?;
    for (i, op) in ops.into_iter().enumerate() {
        run.apply(op)
            .await
            .map_err(|e| fail(format!("step {i} ({op:?}): {e}")))?;
        run.check()
            .await
            .map_err(|e| fail(format!("after step {i} ({op:?}): {e}")))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        max_shrink_iters: 512,
        failure_persistence: None,
        ..Config::default()
    })]

    /// Random sequences of up to 20 operations on up to three sessions of one user agree
    /// with the model at every step.
    #[test]
    fn refresh_rotation_follows_the_model(ops in proptest::collection::vec(op(), 1..=20)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(run_sequence(ops))?;
    }
}
